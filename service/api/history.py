"""Sync history for integrators: every push, retry, merge, conflict and resolution."""

from __future__ import annotations

import base64
import datetime as dt

import strawberry

from service.api.context import BadRequest, Forbidden, Info
from service.api.pages import PageInfo
from service.api.scalars import JSON, DateTime, optional_id, require_offset
from service.auth.roles import Role
from service.domain import report
from service.domain.anomalies import AnomalyCode
from service.domain.history import SyncAction
from service.domain.history import SyncEvent as DomainEvent
from service.domain.record_types import RecordType
from service.store import anomalies, history, identity

strawberry.enum(SyncAction, description="What happened: a change outcome, or a push, resolution or web write.")


@strawberry.type
class SyncEvent:
    id: strawberry.ID
    at: DateTime
    sync_id: strawberry.ID | None
    device_id: strawberry.ID | None
    rep_id: strawberry.ID | None
    actor_id: str | None
    offline_id: strawberry.ID | None
    record_type: RecordType | None
    record_id: strawberry.ID | None
    action: SyncAction
    attempt: int | None
    version_before: int | None
    version_after: int | None
    utc_offset_minutes: int | None = strawberry.field(
        description="The device's UTC offset when it captured the change."
    )
    detail: JSON

    @classmethod
    def of(cls, event: DomainEvent) -> SyncEvent:
        return cls(
            id=strawberry.ID(str(event.id)),
            at=event.at,
            sync_id=optional_id(event.sync_id),
            device_id=optional_id(event.device_id),
            rep_id=optional_id(event.rep_id),
            actor_id=event.actor_id,
            offline_id=optional_id(event.offline_id),
            record_type=event.record_type,
            record_id=optional_id(event.record_id),
            action=SyncAction[event.action],
            attempt=event.attempt,
            version_before=event.version_before,
            version_after=event.version_after,
            utc_offset_minutes=event.utc_offset_minutes,
            detail=event.detail,
        )


@strawberry.input
class SyncHistoryFilter:
    rep_id: strawberry.ID | None = None
    device_id: strawberry.ID | None = None
    record_type: RecordType | None = None
    record_id: strawberry.ID | None = None
    actions: list[SyncAction] | None = None
    since: DateTime | None = None
    until: DateTime | None = None


@strawberry.type
class SyncEventEdge:
    cursor: str
    node: SyncEvent


@strawberry.type
class SyncEventConnection:
    edges: list[SyncEventEdge]
    page_info: PageInfo


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"event:{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if kind != "event":
            raise ValueError
        return int(value)
    except ValueError:
        raise BadRequest("after is not a cursor this server gave out") from None


def history_filter(info: Info, filter: SyncHistoryFilter | None) -> history.HistoryFilter:
    """The filter as the store takes it, narrowed to what the caller may see."""
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.INTEGRATOR, Role.REP)
    filter = filter or SyncHistoryFilter()
    rep_id = str(filter.rep_id) if filter.rep_id else None
    if principal.role is Role.REP:
        if rep_id not in (None, principal.user_id):
            raise Forbidden("a rep sees only its own history")
        rep_id = principal.user_id
    try:
        since = require_offset(filter.since, "since") if filter.since else None
        until = require_offset(filter.until, "until") if filter.until else None
    except ValueError as error:
        raise BadRequest(str(error)) from None
    return history.HistoryFilter(
        rep_id=rep_id,
        device_id=str(filter.device_id) if filter.device_id else None,
        record_type=filter.record_type,
        record_id=str(filter.record_id) if filter.record_id else None,
        actions=tuple(action.value for action in filter.actions or ()),
        since=since,
        until=until,
    )


async def sync_history(
    info: Info, filter: SyncHistoryFilter | None = None, first: int | None = 100, after: str | None = None
) -> SyncEventConnection:
    """Oldest first, by sequence: pages stay stable while new events arrive."""
    first = 100 if first is None else first
    if not 1 <= first <= 1000:
        raise BadRequest("first must be between 1 and 1000")
    store_filter = history_filter(info, filter)
    events, more = await history.page(
        info.context.services.store, store_filter, decode_cursor(after) if after else 0, first
    )
    edges = [SyncEventEdge(cursor=encode_cursor(e.id or 0), node=SyncEvent.of(e)) for e in events]
    return SyncEventConnection(
        edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None)
    )


@strawberry.type(description="How many events of one action a report counts.")
class ActionCount:
    action: SyncAction
    label: str = strawberry.field(description="The action in a sync report's words, e.g. DUPLICATE: No new changes.")
    count: int

    @classmethod
    def of(cls, count: report.ActionCount) -> ActionCount:
        return cls(action=SyncAction[count.action], label=count.label, count=count.count)


@strawberry.type(description="How many anomaly flags of one code were raised.")
class AnomalyCount:
    code: AnomalyCode
    count: int

    @classmethod
    def of(cls, count: report.CodeCount) -> AnomalyCount:
        return cls(code=AnomalyCode(count.code), count=count.count)


@strawberry.type(description="One rep's day.")
class RepSyncReport:
    rep_id: strawberry.ID
    total: int
    actions: list[ActionCount] = strawberry.field(description="Only the actions that happened.")
    devices_synced: int
    devices_silent: int
    silent_device_ids: list[strawberry.ID]
    anomalies: list[AnomalyCount] = strawberry.field(description="Flags raised that day, by code (none: empty).")


@strawberry.type(description="What happened on one local day: counts per action, in total and per rep.")
class SyncReport:
    date: dt.date
    timezone: str
    since: DateTime = strawberry.field(description="The day's first instant (UTC).")
    until: DateTime = strawberry.field(description="The next day's first instant (UTC): the day is [since, until).")
    hours: float = strawberry.field(description="24, or 23 / 25 on a day the zone changes its clocks.")
    total: int
    actions: list[ActionCount] = strawberry.field(description="Every action, zeros included.")
    reps: list[RepSyncReport]
    devices_synced: int = strawberry.field(description="Devices with a push that day.")
    devices_silent: int = strawberry.field(
        description="Registered devices, not revoked by the day's end, that did not push that day."
    )
    silent_device_ids: list[strawberry.ID]
    anomalies: list[AnomalyCount] = strawberry.field(description="Flags raised that day, by code, over every rep.")

    @classmethod
    def of(cls, day: report.DailyReport) -> SyncReport:
        window = day.window
        return cls(
            date=window.day,
            timezone=window.timezone,
            since=window.start,
            until=window.end,
            hours=window.hours,
            total=day.total,
            actions=[ActionCount.of(count) for count in day.actions],
            reps=[
                RepSyncReport(
                    rep_id=strawberry.ID(rep.rep_id),
                    total=rep.total,
                    actions=[ActionCount.of(count) for count in rep.actions],
                    devices_synced=len(rep.devices_synced),
                    devices_silent=len(rep.devices_silent),
                    silent_device_ids=[strawberry.ID(d) for d in rep.devices_silent],
                    anomalies=[AnomalyCount.of(count) for count in rep.anomalies],
                )
                for rep in day.reps
            ],
            devices_synced=len(day.devices_synced),
            devices_silent=len(day.devices_silent),
            silent_device_ids=[strawberry.ID(d) for d in day.devices_silent],
            anomalies=[AnomalyCount.of(count) for count in day.anomalies],
        )


async def sync_report(info: Info, date: dt.date, timezone: str | None = "UTC") -> SyncReport:
    """The local day ``date`` in ``timezone`` (IANA), counted by the database; a rep sees only its own."""
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.INTEGRATOR, Role.REP)
    rep_id = principal.user_id if principal.role is Role.REP else None
    try:
        window = report.day_window(date, timezone or "UTC")
    except ValueError as error:
        raise BadRequest(str(error)) from None
    store = info.context.services.store
    tallies = await history.count_actions(store, window.start, window.end, rep_id)
    pushed = await history.devices_pushed(store, window.start, window.end, rep_id)
    devices = [
        report.DeviceRegistration(d.id, d.user_id, d.registered_at, d.revoked_at)
        for d in await identity.list_devices(store, rep_id)
    ]
    flags = await anomalies.count_flagged(store, window.start, window.end, rep_id)
    return SyncReport.of(report.build_report(window, tallies, pushed, devices, flags))
