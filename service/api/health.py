"""Sync Health: per-rep status, the refusals connection, device status reports."""

from __future__ import annotations

from datetime import datetime

import strawberry

from service.api import input_limits as limits
from service.api.anomalies import Anomaly
from service.api.context import BadRequest, Forbidden, Info
from service.api.identity import Device, User
from service.api.pages import PageInfo, decode_time_cursor, encode_time_cursor
from service.api.refusals import Refusal
from service.api.scalars import DateTime, require_offset
from service.auth.roles import Role
from service.domain.health import HealthStatus
from service.domain.record_types import RecordType
from service.domain.refusals import RefusalKind, RefusalStatus
from service.store import refusals as refusal_store


@strawberry.type
class DeviceHealth:
    device: Device
    status: HealthStatus
    open_refusals: int
    open_conflicts: int
    pending_photos: int = strawberry.field(
        description="Photos its records point at that have not been uploaded after FIELDSYNC_PHOTO_PENDING_AFTER_HOURS"
    )
    oldest_pending_photo_at: DateTime | None = strawberry.field(
        description="When the server first saw a record point at the oldest of those photos"
    )


@strawberry.type
class RepSyncHealth:
    rep: User
    status: HealthStatus
    devices: list[DeviceHealth]
    open_refusals: list[Refusal]
    push_refusals: list[Refusal]
    open_conflicts: int
    last_sync_at: DateTime | None
    pending_photos: int = strawberry.field(description="Overdue photos over all its devices")
    open_anomalies: list[Anomaly] = strawberry.field(
        description="Open anomaly flags, newest first; any HIGH one makes the rep NEEDS_ATTENTION"
    )


@strawberry.type
class SyncHealth:
    reps: list[RepSyncHealth]
    generated_at: DateTime


async def sync_health(info: Info, rep_id: strawberry.ID | None = None) -> SyncHealth:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP)
    if principal.role is Role.REP:
        if rep_id not in (None, principal.user_id):
            raise Forbidden("a rep sees only its own sync health")
        rep_id = strawberry.ID(principal.user_id)
    services = info.context.services
    reps = await services.health.sync_health(str(rep_id) if rep_id else None)
    return SyncHealth(
        reps=[
            RepSyncHealth(
                rep=User.of(h.rep),
                status=h.status,
                devices=[
                    DeviceHealth(
                        device=Device.of(d.device),
                        status=d.status,
                        open_refusals=d.open_refusals,
                        open_conflicts=d.open_conflicts,
                        pending_photos=d.photos.count if d.photos else 0,
                        oldest_pending_photo_at=d.photos.oldest if d.photos else None,
                    )
                    for d in h.devices
                ],
                open_refusals=[Refusal.of(r) for r in h.open_refusals],
                push_refusals=[Refusal.of(r) for r in h.push_refusals],
                open_conflicts=h.open_conflicts,
                last_sync_at=h.last_sync_at,
                pending_photos=h.pending_photos,
                open_anomalies=[Anomaly.of(a) for a in h.open_anomalies],
            )
            for h in reps
        ],
        generated_at=services.sync.now(),
    )


@strawberry.input
class RefusalFilter:
    rep_id: strawberry.ID | None = None
    device_id: strawberry.ID | None = None
    status: list[RefusalStatus] | None = None
    kind: RefusalKind | None = None
    code: str | None = None
    record_type: RecordType | None = None
    record_id: strawberry.ID | None = None
    since: DateTime | None = None
    until: DateTime | None = None


@strawberry.type
class RefusalEdge:
    cursor: str
    node: Refusal


@strawberry.type
class RefusalConnection:
    edges: list[RefusalEdge]
    page_info: PageInfo
    total_count: int


async def refusals(
    info: Info, filter: RefusalFilter | None = None, first: int | None = 50, after: str | None = None
) -> RefusalConnection:
    """Oldest first, so a backlog is cleared in the order it built up."""
    first = 50 if first is None else first
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP, Role.INTEGRATOR)
    if not 1 <= first <= 500:
        raise BadRequest("first must be between 1 and 500")
    filter = filter or RefusalFilter()
    query: dict[str, object] = {}
    if principal.role is Role.REP:
        if filter.rep_id not in (None, principal.user_id):
            raise Forbidden("a rep sees only its own refusals")
        query["repId"] = principal.user_id
    elif filter.rep_id:
        query["repId"] = str(filter.rep_id)
    for name, value in (
        ("deviceId", filter.device_id),
        ("code", filter.code),
        ("recordId", filter.record_id),
        ("kind", filter.kind.value if filter.kind else None),
        ("recordType", filter.record_type.value if filter.record_type else None),
    ):
        if value is not None:
            query[name] = str(value)
    if filter.status:
        query["status"] = {"$in": [s.value for s in filter.status]}
    window: dict[str, datetime] = {}
    try:
        if filter.since:
            window["$gte"] = require_offset(filter.since, "since")
        if filter.until:
            window["$lt"] = require_offset(filter.until, "until")
    except ValueError as error:
        raise BadRequest(str(error)) from None
    if window:
        query["createdAt"] = window
    collection = info.context.services.store.db[refusal_store.COLLECTION]
    total = await collection.count_documents(query)
    if after:
        created, last_id = decode_time_cursor(after)
        query = {
            "$and": [query, {"$or": [{"createdAt": {"$gt": created}}, {"createdAt": created, "_id": {"$gt": last_id}}]}]
        }
    documents = await collection.find(query).sort([("createdAt", 1), ("_id", 1)]).limit(first + 1).to_list()
    found = [refusal_store.from_document(d) for d in documents[:first]]
    edges = [RefusalEdge(cursor=encode_time_cursor(r.created_at, r.id), node=Refusal.of(r)) for r in found]
    return RefusalConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(documents) > first, end_cursor=edges[-1].cursor if edges else None),
        total_count=total,
    )


@strawberry.input
class DeviceStatusInput:
    device_id: strawberry.ID
    queue_depth: int
    app_version: str | None = None


async def report_device_status(info: Info, input: DeviceStatusInput) -> Device:
    principal = info.context.require_device(str(input.device_id))
    limits.queue_depth(input.queue_depth)
    limits.optional_text("appVersion", input.app_version, limits.APP_VERSION_MAX)
    device = await info.context.services.sync.report_status(
        device_id=principal.device_id or "",
        rep_id=principal.user_id,
        queue_depth=input.queue_depth,
        app_version=input.app_version,
    )
    return Device.of(device)
