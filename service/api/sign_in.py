"""``/auth/*``: people sign in to the console with a name and password, and sign out.

``POST /auth/login`` ``{name, password}`` sets the session cookie (HttpOnly,
SameSite=Strict, Secure over HTTPS) and answers ``{user, csrfToken}``; attempts are
rate limited per client address and per name. ``GET /auth/session`` answers the same
for a page that reloads. ``POST /auth/logout`` (with the CSRF header) ends the session
and closes its subscriptions.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.api.credentials import CSRF_HEADER, SESSION_COOKIE, Credential, authenticate
from service.api.rate_limit import retry_after
from service.auth.access import AuthError
from service.store.identity import User
from service.store.sign_in import Session, login_of

if TYPE_CHECKING:
    from service.services import Services


def _services(request: Request) -> Services:
    return request.app.state.fieldsync["services"]


def _error(status: int, message: str, **headers: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _signed_in(session: Session, user: User) -> dict[str, object]:
    return {"user": {"id": user.id, "name": user.name, "role": user.role.value}, "csrfToken": session.csrf}


async def login(request: Request) -> Response:
    services = _services(request)
    try:
        body = json.loads(await request.body())
        name, password = body["name"], body["password"]
        assert isinstance(name, str) and isinstance(password, str) and len(name) <= 200 and len(password) <= 200
    except (ValueError, KeyError, TypeError, AssertionError):
        return _error(400, 'send {"name": ..., "password": ...} as JSON')
    client = request.client.host if request.client else "unknown"
    for key in (f"login-client:{client}", f"login-name:{login_of(name)}"):
        if wait := services.login_limiter.take(key):
            seconds = retry_after(wait)
            return _error(429, f"too many sign-in attempts; retry in {seconds} s", **{"Retry-After": str(seconds)})
    try:
        opened = await services.sign_in.open_session(name, password)
    except AuthError as error:
        return _error(401, str(error))
    response = JSONResponse(_signed_in(opened.session, opened.user), headers={"Cache-Control": "no-store"})
    response.set_cookie(
        SESSION_COOKIE,
        opened.secret,
        max_age=int(services.settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def current_session(request: Request) -> Response:
    try:
        session, user = await _services(request).sign_in.session(request.cookies.get(SESSION_COOKIE))
    except AuthError as error:
        return _error(401, str(error))
    return JSONResponse(_signed_in(session, user), headers={"Cache-Control": "no-store"})


async def logout(request: Request) -> Response:
    services = _services(request)
    credential = Credential(session=request.cookies.get(SESSION_COOKIE), csrf=request.headers.get(CSRF_HEADER))
    try:
        principal = await authenticate(services, credential)
    except AuthError as error:
        return _error(401, str(error))
    assert credential.session is not None
    await services.sign_in.close_session(credential.session)
    services.events.token_revoked(principal.token_id)
    response = JSONResponse({"signedOut": True})
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
