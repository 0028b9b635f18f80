"""What a caller presents to authenticate, over HTTP and WebSocket, and who it turns out to be.

A bearer token (``Authorization: Bearer``; on WebSocket ``{"authorization": ...}`` in
``connection_init``) wins. Without one, a session cookie counts together with its CSRF
token: the ``X-CSRF-Token`` header on HTTP, ``{"csrf": ...}`` in ``connection_init``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from service.api.rate_limit import budget_key
from service.auth.access import AuthError
from service.auth.roles import Principal
from service.auth.tokens import bearer

if TYPE_CHECKING:
    from service.services import Services

SESSION_COOKIE = "fieldsync_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Credential:
    """Secrets a caller presented; never shown in reprs or logs."""

    token: str | None = field(default=None, repr=False)
    session: str | None = field(default=None, repr=False)
    csrf: str | None = field(default=None, repr=False)

    @classmethod
    def of_request(cls, connection: HTTPConnection) -> Credential:
        token = bearer(connection.headers.get("authorization"))
        if token:
            return cls(token=token)
        return cls(session=connection.cookies.get(SESSION_COOKIE), csrf=connection.headers.get(CSRF_HEADER))

    @classmethod
    def of_connection_init(cls, connection: HTTPConnection, payload: object) -> Credential:
        values = payload if isinstance(payload, dict) else {}
        authorization, csrf = values.get("authorization"), values.get("csrf")
        token = bearer(authorization) if isinstance(authorization, str) else None
        if token:
            return cls(token=token)
        return cls(session=connection.cookies.get(SESSION_COOKIE), csrf=csrf if isinstance(csrf, str) else None)

    @property
    def presented(self) -> bool:
        return bool(self.token or self.session)

    def budget(self, client: str | None) -> str:
        """The rate-limit budget this caller spends first."""
        return budget_key(self.token or self.session, client)


async def authenticate(services: Services, credential: Credential, *, download: bool = False) -> Principal:
    """Who presented ``credential``; AuthError when nobody (its message never holds a secret).

    ``download``: a GET that changes nothing (the history export), where a session cookie
    counts without its CSRF token.
    """
    if credential.token:
        return await services.access.authenticate(credential.token)
    if credential.session:
        return await services.sign_in.authenticate(credential.session, credential.csrf, download=download)
    raise AuthError("authentication required")
