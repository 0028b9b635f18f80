"""Users, devices and tokens."""

from __future__ import annotations

from datetime import datetime

import strawberry

from service.api import input_limits as limits
from service.api.context import BadRequest, Forbidden, Info, NotFoundError
from service.api.scalars import DateTime
from service.auth.access import AuthError, Conflicting
from service.auth.access import Forbidden as AccessForbidden
from service.auth.passwords import password_problem
from service.auth.roles import STAFF, Role
from service.auth.sign_in import BadPassword
from service.domain.health import HealthStatus
from service.store import identity

HealthStatusEnum = strawberry.enum(HealthStatus, name="HealthStatus")


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    role: Role
    active: bool

    @classmethod
    def of(cls, user: identity.User) -> User:
        return cls(id=strawberry.ID(user.id), name=user.name, role=user.role, active=user.active)


async def user_named(info: Info, user_id: str | None) -> User | None:
    """The user with this id as the API shows it (None for no id, or one the store does not hold)."""
    user = await info.context.users.load(user_id) if user_id else None
    return User.of(user) if user else None


@strawberry.type
class Device:
    id: strawberry.ID
    name: str
    platform: str
    app_version: str | None
    last_sync_at: DateTime | None
    queue_depth: int | None
    revoked_at: DateTime | None
    user_id: strawberry.ID
    queue_growing_since: DateTime | None
    registered_at: strawberry.Private[datetime]

    @strawberry.field
    async def user(self, info: Info) -> User | None:
        return await user_named(info, self.user_id)

    @strawberry.field
    async def status(self, info: Info) -> HealthStatus:
        return await info.context.device_statuses.load(self.id)

    @classmethod
    def of(cls, device: identity.Device) -> Device:
        return cls(
            id=strawberry.ID(device.id),
            name=device.name,
            platform=device.platform,
            app_version=device.app_version,
            last_sync_at=device.last_sync_at,
            queue_depth=device.queue_depth,
            revoked_at=device.revoked_at,
            user_id=strawberry.ID(device.user_id),
            queue_growing_since=device.queue_growing_since,
            registered_at=device.registered_at,
        )


async def device_named(info: Info, device_id: str | None) -> Device | None:
    """The device with this id as the API shows it (None for no id, or one the store does not hold)."""
    device = await info.context.devices.load(device_id) if device_id else None
    return Device.of(device) if device else None


@strawberry.type
class TokenInfo:
    id: strawberry.ID
    user_id: strawberry.ID
    device_id: strawberry.ID | None
    created_at: DateTime
    expires_at: DateTime | None
    revoked_at: DateTime | None

    @classmethod
    def of(cls, token: identity.Token) -> TokenInfo:
        return cls(
            id=strawberry.ID(token.id),
            user_id=strawberry.ID(token.user_id),
            device_id=strawberry.ID(token.device_id) if token.device_id else None,
            created_at=token.created_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )


@strawberry.input
class CreateUserInput:
    name: str
    role: Role
    password: str | None = strawberry.field(
        default=None, description="ADMIN or MANAGER: a first password for signing in to the console."
    )


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.type
class CreateUserResult:
    user: User
    token: str = strawberry.field(description="The user's first token; shown once.")


@strawberry.input
class RegisterDeviceInput:
    device_id: strawberry.ID
    name: str
    platform: str
    app_version: str | None = None


@strawberry.type
class RegisterDeviceResult:
    device: Device
    token: str = strawberry.field(description="A device token for this rep and device; shown once.")


@strawberry.type
class IssueTokenResult:
    token: str
    info: TokenInfo


async def create_user(info: Info, input: CreateUserInput) -> CreateUserResult:
    info.context.require(Role.ADMIN)
    services = info.context.services
    name = limits.text("name", input.name.strip(), limits.USER_NAME_MAX)
    if input.password is not None and (problem := password_problem(input.password) or _no_password(input.role)):
        raise BadRequest(problem)
    user, issued = await services.access.create_user(name, input.role)
    if input.password is not None:
        try:
            await services.sign_in.set_password(user, input.password)
        except Conflicting as error:
            raise BadRequest(f"{error}; the user was created without a password") from None
    return CreateUserResult(user=User.of(user), token=issued.token)


def _no_password(role: Role) -> str | None:
    return None if role in STAFF else f"a {role.value} signs in with a token, not a password"


async def change_password(info: Info, input: ChangePasswordInput) -> User:
    principal = info.context.require(Role.ADMIN, Role.MANAGER)
    services = info.context.services
    try:
        ended = await services.sign_in.change_password(principal, input.current_password, input.new_password)
    except (AuthError, BadPassword) as error:
        raise BadRequest(str(error)) from None
    for session_id in ended:
        services.events.token_revoked(session_id)
    user = await info.context.users.load(principal.user_id)
    assert user is not None
    return User.of(user)


async def register_device(info: Info, input: RegisterDeviceInput) -> RegisterDeviceResult:
    principal = info.context.require(Role.REP)
    if principal.device_id is not None and principal.device_id != input.device_id:
        raise Forbidden("a device token cannot register another device")
    try:
        device, issued = await info.context.services.access.register_device(
            principal,
            limits.identifier("deviceId", str(input.device_id).strip()),
            limits.text("name", input.name.strip(), limits.DEVICE_NAME_MAX),
            limits.text("platform", input.platform.strip(), limits.PLATFORM_MAX),
            limits.optional_text("appVersion", input.app_version, limits.APP_VERSION_MAX),
        )
    except Conflicting as error:
        raise BadRequest(str(error)) from None
    except AccessForbidden as error:
        raise Forbidden(str(error)) from None
    return RegisterDeviceResult(device=Device.of(device), token=issued.token)


async def issue_token(info: Info, user_id: strawberry.ID) -> IssueTokenResult:
    principal = info.context.require(Role.ADMIN, Role.MANAGER)
    user = await identity.get_user(info.context.services.store, str(user_id))
    if user is None:
        raise NotFoundError(f"no user {user_id}")
    if principal.role is Role.MANAGER and user.role in (Role.ADMIN, Role.MANAGER, Role.INTEGRATOR):
        raise Forbidden("a MANAGER issues tokens to reps only")
    issued = await info.context.services.access.issue_token(user.id)
    return IssueTokenResult(token=issued.token, info=TokenInfo.of(issued.record))


async def revoke_token(info: Info, token_id: strawberry.ID) -> TokenInfo:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP, Role.INTEGRATOR)
    store = info.context.services.store
    token = await identity.get_token(store, str(token_id))
    if token is None or not await _may_manage_user(info, principal.role, principal.user_id, token.user_id):
        raise NotFoundError(f"no token {token_id}")
    info.context.services.events.token_revoked(token.id)  # its feeds end first, saying why (see revoke_device)
    revoked = await info.context.services.access.revoke_token(token.id)
    assert revoked is not None
    return TokenInfo.of(revoked)


async def revoke_device(info: Info, device_id: strawberry.ID) -> Device:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP)
    device = await identity.get_device(info.context.services.store, str(device_id))
    if device is None or (principal.role is Role.REP and device.user_id != principal.user_id):
        raise NotFoundError(f"no device {device_id}")
    # Its live feeds end (saying why) before the store has it revoked: a connection's periodic token re-check
    # that meets the revocation in the store would otherwise close the connection before the feeds said why.
    info.context.services.events.device_revoked(device.id)
    revoked = await info.context.services.access.revoke_device(device.id)
    assert revoked is not None
    return Device.of(revoked)


async def _may_manage_user(info: Info, role: Role, caller_id: str, user_id: str) -> bool:
    if role is Role.ADMIN or caller_id == user_id:
        return True
    if role is Role.MANAGER:
        user = await identity.get_user(info.context.services.store, user_id)
        return user is not None and user.role is Role.REP
    return False


async def me(info: Info) -> User:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP, Role.INTEGRATOR)
    user = await info.context.users.load(principal.user_id)
    assert user is not None
    return User.of(user)


async def users(info: Info, role: Role | None = None) -> list[User]:
    info.context.require(Role.ADMIN, Role.MANAGER)
    return [User.of(u) for u in await identity.list_users(info.context.services.store, role)]


async def devices(info: Info, rep_id: strawberry.ID | None = None) -> list[Device]:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP)
    if principal.role is Role.REP:
        rep_id = strawberry.ID(principal.user_id)
    found = await identity.list_devices(info.context.services.store, str(rep_id) if rep_id else None)
    return [Device.of(d) for d in found]
