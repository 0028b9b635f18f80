"""Refusals as GraphQL types, and the queries and mutations on them."""

from __future__ import annotations

import strawberry

from service.api.context import BadRequest, Info, NotFoundError
from service.api.identity import Device, User, device_named, user_named
from service.api.scalars import JSON, DateTime, optional_id
from service.auth.roles import Role
from service.domain import refusals as domain
from service.domain.record_types import RecordType
from service.domain.refusals import RefusalAction, RefusalKind, RefusalStatus
from service.domain.sync_service import InvalidRequest, NotFound


@strawberry.type
class RecordRef:
    record_type: RecordType
    record_id: strawberry.ID


@strawberry.type
class Refusal:
    id: strawberry.ID
    kind: RefusalKind
    code: str
    reason: str
    field: str | None
    related: RecordRef | None
    record_type: RecordType | None
    record_id: strawberry.ID | None
    offline_id: strawberry.ID | None
    device_id: strawberry.ID | None
    rep_id: strawberry.ID | None
    status: RefusalStatus
    action: RefusalAction
    attempts: int
    created_at: DateTime
    resolved_at: DateTime | None
    note: str | None = strawberry.field(description="The manager's note on dismissing it.")
    change: JSON | None = strawberry.field(
        description="RECORD: the change as the device sent it (what a manager can still apply)."
    )

    @strawberry.field
    async def device(self, info: Info) -> Device | None:
        return await device_named(info, self.device_id)

    @strawberry.field
    async def rep(self, info: Info) -> User | None:
        return await user_named(info, self.rep_id)

    @classmethod
    def of(cls, refusal: domain.Refusal) -> Refusal:
        related = refusal.related
        return cls(
            id=strawberry.ID(refusal.id),
            kind=refusal.kind,
            code=refusal.code,
            reason=refusal.reason,
            field=refusal.field,
            related=RecordRef(record_type=related[0], record_id=strawberry.ID(related[1])) if related else None,
            record_type=refusal.record_type,
            record_id=optional_id(refusal.record_id),
            offline_id=optional_id(refusal.offline_id),
            device_id=optional_id(refusal.device_id),
            rep_id=optional_id(refusal.rep_id),
            status=refusal.status,
            action=refusal.action,
            attempts=refusal.attempts,
            created_at=refusal.created_at,
            resolved_at=refusal.resolved_at,
            note=refusal.note,
            change=refusal.change,
        )


async def acknowledge_refusal(info: Info, id: strawberry.ID) -> Refusal:
    principal = info.context.require(Role.REP)

    def mine(refusal: domain.Refusal) -> bool:
        return refusal.rep_id == principal.user_id and (
            principal.device_id is None or refusal.device_id == principal.device_id
        )

    return await _close(info, str(id), acknowledge=True, may_close=mine, note=None)


async def dismiss_refusal(info: Info, id: strawberry.ID, note: str | None = None) -> Refusal:
    info.context.require(Role.ADMIN, Role.MANAGER)
    if note is not None and len(note) > 2000:
        raise BadRequest("note must be at most 2000 characters")
    return await _close(info, str(id), acknowledge=False, may_close=lambda refusal: True, note=note)


async def _close(info: Info, refusal_id: str, *, acknowledge: bool, may_close, note: str | None) -> Refusal:  # type: ignore[no-untyped-def]
    principal = info.context.principal
    assert principal is not None
    try:
        refusal = await info.context.services.sync.close_refusal(
            refusal_id, acknowledge=acknowledge, actor_id=f"user:{principal.user_id}", may_close=may_close, note=note
        )
    except NotFound:
        raise NotFoundError(f"no refusal {refusal_id}") from None
    except InvalidRequest as error:
        raise BadRequest(str(error)) from None
    return Refusal.of(refusal)
