"""People sign in with a name and password and get a session (cookie) with a CSRF token.

Devices and integrators keep bearer tokens. Only ADMIN and MANAGER users sign in with a
password. A session authenticates a request only together with its CSRF token (a
header on HTTP, the ``connection_init`` payload on WebSocket), so a page of another site
that gets the browser to send the cookie achieves nothing.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from service.auth.access import AuthError, Conflicting
from service.auth.passwords import hash_password, needs_rehash, new_password, password_problem, verify_password
from service.auth.roles import STAFF, Principal, Role
from service.auth.tokens import same_hash, token_hash
from service.store import identity, sign_in
from service.store.database import Store
from service.store.identity import User
from service.store.sign_in import Credential, Session, login_of

# Verified when the name is unknown, so that a wrong name costs what a wrong password does.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


class BadPassword(ValueError):
    """The password cannot be used (too short, too long)."""


@dataclass(frozen=True)
class OpenedSession:
    secret: str  # the cookie's value, shown once
    session: Session
    user: User


class SignInService:
    def __init__(
        self,
        store: Store,
        *,
        session_ttl: timedelta = timedelta(hours=12),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._session_ttl = session_ttl
        self._clock = clock

    async def set_password(self, user: User, password: str) -> None:
        """Give ``user`` (ADMIN or MANAGER) a password; they sign in with their name."""
        if user.role not in STAFF:
            raise BadPassword(f"a {user.role.value} signs in with a token, not a password")
        if problem := password_problem(password):
            raise BadPassword(problem)
        hashed = await asyncio.to_thread(hash_password, password)
        try:
            await sign_in.put_credential(self._store, Credential(login_of(user.name), user.id, hashed, self._clock()))
        except DuplicateKeyError:
            raise Conflicting(f"another user already signs in as {user.name!r}") from None

    async def open_session(self, name: str, password: str) -> OpenedSession:
        """Check the name and password; a new session. Wrong name or password: AuthError, the same either way."""
        credential = await sign_in.find_credential(self._store, login_of(name))
        matches = await asyncio.to_thread(verify_password, credential.hash if credential else _DUMMY_HASH, password)
        user = await identity.get_user(self._store, credential.user_id) if credential and matches else None
        if credential is None or user is None or not user.active or user.role not in STAFF:
            raise AuthError("wrong name or password")
        if needs_rehash(credential.hash):
            await self.set_password(user, password)
        secret = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(
            id=str(uuid.uuid4()),
            hash=token_hash(secret),
            user_id=user.id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self._session_ttl,
        )
        await sign_in.insert_session(self._store, session)
        return OpenedSession(secret, session, user)

    async def session(self, secret: str | None) -> tuple[Session, User]:
        """The live session whose cookie holds ``secret``, and its user."""
        if not secret:
            raise AuthError("not signed in")
        hashed = token_hash(secret)
        session = await sign_in.find_session(self._store, hashed)
        if session is None or not same_hash(session.hash, hashed):
            raise AuthError("not signed in")
        if session.expires_at <= self._clock():
            raise AuthError("session expired", user_id=session.user_id)
        user = await identity.get_user(self._store, session.user_id)
        if user is None or not user.active or user.role not in STAFF:
            raise AuthError("user inactive", user_id=session.user_id)
        return session, user

    async def authenticate(self, secret: str | None, csrf: str | None, *, download: bool = False) -> Principal:
        """A request made with a session cookie: its CSRF token must come with it, except for a download.

        A download (``GET``, changes nothing) is a plain link that cannot carry a header; the
        cookie's SameSite=Strict keeps other sites from sending it, and CORS never lets them read it.
        """
        session, user = await self.session(secret)
        if download:
            return Principal(user_id=user.id, role=user.role, token_id=session.id)
        if not csrf or not secrets.compare_digest(session.csrf.encode(), csrf.encode()):
            raise AuthError("a signed-in request needs its CSRF token", user_id=user.id)
        return Principal(user_id=user.id, role=user.role, token_id=session.id)

    async def close_session(self, secret: str) -> None:
        await sign_in.delete_session(self._store, token_hash(secret))

    async def change_password(self, principal: Principal, current: str, new: str) -> list[str]:
        """The signed-in user's own password; ends their other sessions (their ids are returned)."""
        user = await identity.get_user(self._store, principal.user_id)
        credential = await sign_in.credential_of_user(self._store, principal.user_id)
        if user is None or credential is None:
            raise AuthError("this user has no password: an admin sets one first")
        if not await asyncio.to_thread(verify_password, credential.hash, current):
            raise AuthError("the current password is wrong")
        await self.set_password(user, new)
        return await sign_in.delete_sessions_of_user(self._store, user.id, keep=principal.token_id)

    async def first_admin(self) -> str | None:
        """First run: with no ADMIN at all, create ``admin`` with a fresh password and return it (else None)."""
        if await identity.list_users(self._store, Role.ADMIN):
            return None
        user = User(id="admin", name="admin", role=Role.ADMIN)
        try:
            await identity.insert_user(self._store, user)
        except DuplicateKeyError:
            return None  # another instance got there first
        password = new_password()
        await self.set_password(user, password)
        return password
