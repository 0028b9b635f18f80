"""Push, pull, conflicts and web writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import strawberry
from graphql import GraphQLError

from service.api import input_limits as limits
from service.api.context import BadRequest, Info, NotFoundError
from service.api.push_refusals import record_push_refusal
from service.api.records import RecordEnvelope, envelope
from service.api.refusals import Refusal
from service.api.scalars import JSON, Base64, DateTime
from service.auth.roles import Principal, Role
from service.domain import conflicts as domain_conflicts
from service.domain.changes import Change, Operation
from service.domain.conflicts import ConflictStatus, Resolution
from service.domain.outcomes import ChangeStatus, Outcome
from service.domain.ports import RevokedSince
from service.domain.record_types import RecordType
from service.domain.sync_service import InvalidRequest, NotFound
from service.domain.sync_service import PushResult as DomainPushResult


@strawberry.input
class ChangeInput:
    offline_id: strawberry.ID
    record_type: RecordType
    record_id: strawberry.ID
    operation: Operation
    captured_at: DateTime
    base_version: int | None = None
    fields: JSON | None = None
    crdt_update: Base64 | None = None
    state_vector: Base64 | None = None
    crdt_epoch: int | None = strawberry.field(
        default=None,
        description="SHARED: the record's crdtEpoch the crdtUpdate and stateVector were made on (null: 0)",
    )
    latitude: float | None = None
    longitude: float | None = None


@strawberry.input
class PushInput:
    device_id: strawberry.ID
    changes: list[ChangeInput]
    queue_depth: int | None = None
    app_version: str | None = None
    sent_at: DateTime | None = strawberry.field(
        default=None,
        description="The device's clock when it sent this push (with offset): how far off its clock runs (CLOCK_SKEW)",
    )


@strawberry.type
class Conflict:
    id: strawberry.ID
    record_type: RecordType
    record_id: strawberry.ID
    device_id: strawberry.ID
    rep_id: strawberry.ID
    offline_id: strawberry.ID
    base_version: int | None
    server_version: int
    device_fields: JSON | None
    server_fields: JSON | None
    changed_fields: list[str]
    status: ConflictStatus
    created_at: DateTime
    resolved_at: DateTime | None

    @strawberry.field
    async def rep(self, info: Info) -> "User | None":  # noqa: UP037
        return await user_named(info, self.rep_id)

    @classmethod
    def of(cls, conflict: domain_conflicts.Conflict) -> Conflict:
        return cls(
            id=strawberry.ID(conflict.id),
            record_type=conflict.record_type,
            record_id=strawberry.ID(conflict.record_id),
            device_id=strawberry.ID(conflict.device_id),
            rep_id=strawberry.ID(conflict.rep_id),
            offline_id=strawberry.ID(conflict.offline_id),
            base_version=conflict.base_version,
            server_version=conflict.server_version,
            device_fields=conflict.device_fields,
            server_fields=conflict.server_fields,
            changed_fields=conflict.changed_fields,
            status=conflict.status,
            created_at=conflict.created_at,
            resolved_at=conflict.resolved_at,
        )


from service.api.identity import User, user_named  # noqa: E402  (Conflict.rep refers to them lazily)


@strawberry.type
class ChangeResult:
    offline_id: strawberry.ID
    status: ChangeStatus
    record: RecordEnvelope | None
    conflict: Conflict | None
    refusal: Refusal | None
    blocked_by: strawberry.ID | None
    duplicate_of: ChangeStatus | None = strawberry.field(
        description="DUPLICATE: the status decided the first time this offlineId arrived."
    )

    @classmethod
    def of(cls, outcome: Outcome) -> ChangeResult:
        return cls(
            offline_id=strawberry.ID(outcome.offline_id),
            status=outcome.status,
            record=envelope(outcome.record, outcome.crdt_diff),
            conflict=Conflict.of(outcome.conflict) if outcome.conflict else None,
            refusal=Refusal.of(outcome.refusal) if outcome.refusal else None,
            blocked_by=strawberry.ID(outcome.blocked_by) if outcome.blocked_by else None,
            duplicate_of=outcome.duplicate_of,
        )


@strawberry.type
class PushResult:
    sync_id: strawberry.ID
    server_time: DateTime
    results: list[ChangeResult]


@strawberry.type
class PullResult:
    records: list[RecordEnvelope]
    cursor: str
    has_more: bool


@strawberry.input
class ResolveConflictInput:
    conflict_id: strawberry.ID
    resolution: Resolution


@strawberry.type
class ResolveConflictResult:
    conflict: Conflict
    record: RecordEnvelope | None
    refusal: Refusal | None = strawberry.field(description="OVERWRITE that the rules refuse (the conflict stays OPEN).")


@strawberry.input
class WriteRecordInput:
    record_type: RecordType
    record_id: strawberry.ID
    fields: JSON | None = None
    base_version: int | None = None
    delete: bool = False


@strawberry.type
class WriteRecordResult:
    status: ChangeStatus
    record: RecordEnvelope | None
    conflict: Conflict | None
    refusal: Refusal | None


def to_change(change: ChangeInput) -> Change:
    fields = change.fields
    if fields is not None and not isinstance(fields, dict):
        raise BadRequest(f"change {change.offline_id}: fields must be a JSON object")
    return Change(
        offline_id=limits.identifier("offlineId", str(change.offline_id)),
        record_type=change.record_type,
        record_id=limits.identifier("recordId", str(change.record_id)),
        operation=change.operation,
        captured_at=change.captured_at,
        base_version=change.base_version,
        fields=fields,
        crdt_update=change.crdt_update,
        state_vector=change.state_vector,
        crdt_epoch=_check_epoch(change),
        latitude=change.latitude,
        longitude=change.longitude,
    )


def _check_epoch(change: ChangeInput) -> int | None:
    if change.crdt_epoch is not None and change.crdt_epoch < 0:
        raise BadRequest(f"change {change.offline_id}: crdtEpoch cannot be negative")
    return change.crdt_epoch


async def push_changes(info: Info, input: PushInput) -> PushResult:
    services = info.context.services
    async with _refused_as_a_whole(info, input):
        principal = info.context.require_device(str(input.device_id))
        limit = services.settings.max_changes_per_push
        info.context.pushed_changes += len(input.changes)  # aliases cannot split one push into many
        if info.context.pushed_changes > limit:
            raise BadRequest(
                f"a push carries at most {limit} changes (one request counts all its pushes); "
                f"this one has {info.context.pushed_changes}"
            )
        limits.optional_text("appVersion", input.app_version, limits.APP_VERSION_MAX)
        limits.queue_depth(input.queue_depth)
        changes = [to_change(change) for change in input.changes]
    try:
        result = await _push(info, input, principal, changes)
    except RevokedSince:  # the caller's token was remembered, and something was revoked since: check it again
        await info.context.confirm()
        async with _refused_as_a_whole(info, input):
            principal = info.context.require_device(str(input.device_id))
        result = await _push(info, input, principal, changes)
    services.metrics.count_push([outcome.status for outcome in result.outcomes])
    return PushResult(
        sync_id=strawberry.ID(result.sync_id),
        server_time=result.server_time,
        results=[ChangeResult.of(outcome) for outcome in result.outcomes],
    )


@asynccontextmanager
async def _refused_as_a_whole(info: Info, input: PushInput) -> AsyncIterator[None]:
    """A push its caller or its size turns away is recorded as a push refusal, then answered as an error."""
    try:
        yield
    except GraphQLError as error:
        await record_push_refusal(
            info.context.services,
            principal=info.context.principal,
            failure=info.context.auth_failure,
            error_code=(error.extensions or {}).get("code", ""),
            message=error.message,
            claimed_device_id=str(input.device_id),
            changes=len(input.changes),
        )
        raise


async def _push(info: Info, input: PushInput, principal: Principal, changes: list[Change]) -> DomainPushResult:
    return await info.context.services.sync.push(
        changes,
        device_id=str(input.device_id),
        rep_id=principal.user_id,
        app_version=input.app_version,
        queue_depth=input.queue_depth,
        sent_at=input.sent_at,
        revocations_seen=info.context.revocations_seen,  # None once confirmed: the commit then checks nothing
    )


async def pull(info: Info, device_id: strawberry.ID, since: str | None = None, limit: int | None = 500) -> PullResult:
    principal = info.context.require_device(str(device_id))
    limit = 500 if limit is None else limit
    if not 1 <= limit <= 5000:
        raise BadRequest("limit must be between 1 and 5000")
    sync = info.context.services.sync
    try:
        try:
            page, cursor = await sync.pull(
                principal.user_id, since, limit, revocations_seen=info.context.revocations_seen
            )
        except RevokedSince:  # the caller's token was remembered, and something was revoked since: check it again
            await info.context.confirm()
            principal = info.context.require_device(str(device_id))
            page, cursor = await sync.pull(principal.user_id, since, limit)
    except InvalidRequest as error:
        raise BadRequest(str(error)) from None
    return PullResult(records=[RecordEnvelope.in_page(r) for r in page.records], cursor=cursor, has_more=page.has_more)


async def conflicts(
    info: Info,
    rep_id: strawberry.ID | None = None,
    status: ConflictStatus | None = ConflictStatus.OPEN,
    first: int = 100,
) -> list[Conflict]:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP, Role.INTEGRATOR)
    found = await info.context.services.sync.access.conflicts(
        principal.scope_rep, str(rep_id) if rep_id else None, status, min(max(first, 1), 1000)
    )
    return [Conflict.of(c) for c in found]


async def resolve_conflict(info: Info, input: ResolveConflictInput) -> ResolveConflictResult:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP)

    def may_resolve(conflict: domain_conflicts.Conflict) -> bool:
        if principal.role is not Role.REP:
            return True
        return conflict.rep_id == principal.user_id and principal.device_id in (None, conflict.device_id)

    try:
        result = await info.context.services.sync.resolve_conflict(
            str(input.conflict_id), input.resolution, resolver=f"user:{principal.user_id}", may_resolve=may_resolve
        )
    except NotFound:
        raise NotFoundError(f"no conflict {input.conflict_id}") from None
    return ResolveConflictResult(
        conflict=Conflict.of(result.conflict),
        record=envelope(result.record),
        refusal=Refusal.of(result.refusal) if result.refusal else None,
    )


async def write_record(info: Info, input: WriteRecordInput) -> WriteRecordResult:
    principal = info.context.require(Role.ADMIN, Role.MANAGER)
    if input.fields is not None and not isinstance(input.fields, dict):
        raise BadRequest("fields must be a JSON object")
    if input.fields is None and not input.delete:
        raise BadRequest("fields are required unless delete is true")
    result = await info.context.services.sync.write_record(
        input.record_type,
        limits.identifier("recordId", str(input.record_id)),
        input.fields,
        input.base_version,
        user_id=principal.user_id,
        delete=input.delete,
    )
    return WriteRecordResult(
        status=result.status,
        record=envelope(result.record),
        conflict=Conflict.of(result.conflict) if result.conflict else None,
        refusal=Refusal.of(result.refusal) if result.refusal else None,
    )


async def record(info: Info, record_type: RecordType, record_id: strawberry.ID) -> RecordEnvelope | None:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP, Role.INTEGRATOR)
    found = await info.context.services.sync.access.record(principal.scope_rep, (record_type, str(record_id)))
    return envelope(found)
