"""Users, devices and tokens: who may call, and as whom."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from service.auth.roles import Principal, Role
from service.auth.tokens import new_token, same_hash, token_hash
from service.store import identity
from service.store.database import Store
from service.store.identity import Device, Token, User


class AuthError(Exception):
    """The caller could not be authenticated. The message never contains the token."""

    def __init__(self, message: str, *, device_id: str | None = None, user_id: str | None = None) -> None:
        super().__init__(message)
        self.device_id = device_id
        self.user_id = user_id


class Forbidden(Exception):
    """Authenticated, but not allowed to do this."""


class Conflicting(Exception):
    """The request names something that already exists."""


@dataclass(frozen=True)
class Admitted:
    """A token found valid: who it is, until when, and the revocation epoch it was checked at."""

    principal: Principal
    expires_at: datetime | None
    epoch: int
    checked_at: float  # time.monotonic()


@dataclass(frozen=True)
class IssuedToken:
    token: str  # the secret, shown once
    record: Token


class AccessService:
    """Tokens in and out. A valid token's principal is remembered for ``REMEMBER_SECONDS`` and
    used while the store's revocation epoch is unchanged: one read per request instead of three
    (none for a push or a pull, which confirm the epoch with their own reads: ``remembered``), and a revocation written
    by any instance counts from the next request on."""

    REMEMBER_SECONDS = 5.0
    REMEMBER_AT_MOST = 10_000

    def __init__(
        self,
        store: Store,
        *,
        token_ttl: timedelta | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._token_ttl = token_ttl
        self._clock = clock
        self._admitted: dict[str, Admitted] = {}

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthError("missing bearer token")
        hashed = token_hash(token)
        epoch = await identity.revocation_epoch(self._store)  # first: a revocation after it shows next time
        known = self._admitted.get(hashed)
        if known is not None and known.epoch == epoch and self._fresh(known):
            return known.principal
        principal, expires_at = await self._check(hashed)
        if len(self._admitted) >= self.REMEMBER_AT_MOST:
            self._admitted.clear()
        self._admitted[hashed] = Admitted(principal, expires_at, epoch, time.monotonic())
        return principal

    def remembered(self, token: str) -> Admitted | None:
        """The token's admission if it is remembered and fresh, with no read: only as good as its ``epoch``,
        which the caller must confirm before anything it does counts (``authenticate`` reads it; a push's
        commit and a pull's read of the head find it on the sequence's counter, ``service/store/sequence.py``)."""
        known = self._admitted.get(token_hash(token))
        return known if known is not None and self._fresh(known) else None

    def _fresh(self, known: Admitted) -> bool:
        return time.monotonic() - known.checked_at < self.REMEMBER_SECONDS and (
            known.expires_at is None or known.expires_at > self._clock()
        )

    async def _check(self, hashed: str) -> tuple[Principal, datetime | None]:
        """The token's principal and expiry, read from the store."""
        stored = await identity.find_token(self._store, hashed)
        if stored is None or not same_hash(stored.hash, hashed):
            raise AuthError("unknown token")
        if stored.revoked_at is not None:
            raise AuthError("token revoked", device_id=stored.device_id, user_id=stored.user_id)
        if stored.expires_at is not None and stored.expires_at <= self._clock():
            raise AuthError("token expired", device_id=stored.device_id, user_id=stored.user_id)
        user = await identity.get_user(self._store, stored.user_id)
        if user is None or not user.active:
            raise AuthError("user inactive", device_id=stored.device_id, user_id=stored.user_id)
        if stored.device_id is not None:
            device = await identity.get_device(self._store, stored.device_id)
            if device is None or device.revoked_at is not None:
                raise AuthError("device revoked", device_id=stored.device_id, user_id=user.id)
        principal = Principal(user_id=user.id, role=user.role, token_id=stored.id, device_id=stored.device_id)
        return principal, stored.expires_at

    async def create_user(self, name: str, role: Role, *, user_id: str | None = None) -> tuple[User, IssuedToken]:
        user = User(id=user_id or str(uuid.uuid4()), name=name, role=role)
        await identity.insert_user(self._store, user)
        return user, await self.issue_token(user.id)

    async def ensure_admin(self, token: str) -> User:
        """Bootstrap: an ADMIN user holding ``token`` exists afterwards."""
        hashed = token_hash(token)
        stored = await identity.find_token(self._store, hashed)
        if stored is not None:
            user = await identity.get_user(self._store, stored.user_id)
            assert user is not None
            return user
        user = User(id="admin", name="Administrator", role=Role.ADMIN)
        if await identity.get_user(self._store, user.id) is None:
            await identity.insert_user(self._store, user)
        await identity.insert_token(
            self._store, Token(id=str(uuid.uuid4()), user_id=user.id, hash=hashed, created_at=self._clock())
        )
        return user

    async def issue_token(self, user_id: str, *, device_id: str | None = None) -> IssuedToken:
        secret = new_token()
        now = self._clock()
        record = Token(
            id=str(uuid.uuid4()),
            user_id=user_id,
            hash=token_hash(secret),
            created_at=now,
            device_id=device_id,
            expires_at=now + self._token_ttl if self._token_ttl else None,
        )
        await identity.insert_token(self._store, record)
        return IssuedToken(secret, record)

    async def register_device(
        self, rep: Principal, device_id: str, name: str, platform: str, app_version: str | None
    ) -> tuple[Device, IssuedToken]:
        existing = await identity.get_device(self._store, device_id)
        if existing is not None and existing.user_id != rep.user_id:
            raise Conflicting(f"device {device_id} is registered to another user")
        if existing is not None and existing.revoked_at is not None:
            raise Forbidden(f"device {device_id} was revoked; register it under a new device id")
        device = existing or Device(
            id=device_id,
            user_id=rep.user_id,
            name=name,
            platform=platform,
            app_version=app_version,
            registered_at=self._clock(),
        )
        if existing is None:
            try:
                await identity.insert_device(self._store, device)
            except DuplicateKeyError:
                raise Conflicting(f"device {device_id} is already registered") from None
        return device, await self.issue_token(rep.user_id, device_id=device_id)

    async def revoke_token(self, token_id: str) -> Token | None:
        await identity.revoke_tokens(self._store, {"tokenId": token_id}, self._clock())
        return await identity.get_token(self._store, token_id)

    async def revoke_device(self, device_id: str) -> Device | None:
        now = self._clock()
        await identity.revoke_tokens(self._store, {"deviceId": device_id}, now)  # first: a check in between says so
        return await identity.revoke_device(self._store, device_id, now)
