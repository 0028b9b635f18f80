"""The per-request context: who is calling, and the services to call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from service.api.credentials import Credential, authenticate
from service.auth.access import AuthError
from service.auth.roles import Principal, Role
from service.domain.health import HealthStatus

if TYPE_CHECKING:
    from service.services import Services
    from service.store.identity import Device, User
    from service.uploads.storage import Upload


class Unauthenticated(GraphQLError):
    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message, extensions={"code": "UNAUTHENTICATED"})


class Forbidden(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "FORBIDDEN"})


class BadRequest(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "BAD_REQUEST"})


class NotFoundError(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "NOT_FOUND"})


@dataclass
class Context:
    services: Services
    principal: Principal | None
    auth_error: str | None = None
    auth_failure: AuthError | None = None  # who a rejected token belonged to, when known
    users: DataLoader[str, User | None] = field(init=False)
    devices: DataLoader[str, Device | None] = field(init=False)
    device_statuses: DataLoader[str, HealthStatus] = field(init=False)
    attachments: DataLoader[str, Upload | None] = field(init=False)  # photo uploads by attachment id
    extra: dict[str, Any] = field(default_factory=dict)
    pushed_changes: int = 0  # changes in this request's pushes so far: the per-push cap spans aliases
    credential: Credential | None = None  # what an HTTP caller presented
    revocations_seen: int | None = None  # a remembered token's revocation epoch, not confirmed yet (``confirm``)

    @property
    def connection_params(self) -> Any:
        return self.extra.get("connection_params")

    @connection_params.setter
    def connection_params(self, value: Any) -> None:
        self.extra["connection_params"] = value

    def __post_init__(self) -> None:
        from service.store import identity
        from service.uploads import storage as uploads

        store = self.services.store

        async def load_users(ids: list[str]) -> list[User | None]:
            found = await identity.get_users(store, ids)
            return [found.get(i) for i in ids]

        async def load_devices(ids: list[str]) -> list[Device | None]:
            found = await identity.get_devices(store, ids)
            return [found.get(i) for i in ids]

        self.users = DataLoader(load_fn=load_users)
        self.devices = DataLoader(load_fn=load_devices)

        async def load_statuses(ids: list[str]) -> list[HealthStatus]:
            found = await self.services.health.device_statuses(ids)
            return [found[i] for i in ids]

        self.device_statuses = DataLoader(load_fn=load_statuses)

        async def load_attachments(ids: list[str]) -> list[Upload | None]:
            found = await uploads.get_many(store, ids)
            return [found.get(i) for i in ids]

        self.attachments = DataLoader(load_fn=load_attachments)

    async def confirm(self) -> None:
        """Confirm a remembered token in the store (one read of the revocation epoch; the full check when it
        moved): every request does so before it runs, but a prepared push or pull, which confirms it itself."""
        if self.revocations_seen is None or self.credential is None:
            return
        self.revocations_seen = None
        try:
            self.principal, self.auth_failure = await authenticate(self.services, self.credential), None
        except AuthError as error:
            self.principal, self.auth_failure = None, error
        self.auth_error = str(self.auth_failure) if self.auth_failure else None

    def require(self, *roles: Role) -> Principal:
        """The caller, who must hold one of ``roles``."""
        if self.principal is None:
            raise Unauthenticated(self.auth_error or "authentication required")
        if self.principal.role not in roles:
            raise Forbidden(f"{self.principal.role.value} may not do this")
        return self.principal

    def require_device(self, device_id: str) -> Principal:
        """A device token of a rep, acting for ``device_id``."""
        principal = self.require(Role.REP)
        if principal.device_id is None:
            raise Forbidden("this needs a device token (registerDevice)")
        if principal.device_id != device_id:
            raise Forbidden("a device token acts only for its own device")
        return principal


Info = StrawberryInfo[Context, None]
