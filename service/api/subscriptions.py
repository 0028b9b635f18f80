"""Live feeds for dashboards: refusal events, device sync status and anomaly flags."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError

from service.api.anomalies import EVENT_TYPES as ANOMALY_EVENT_TYPES
from service.api.anomalies import Anomaly, AnomalyEvent
from service.api.context import Forbidden, Info
from service.api.identity import Device, User
from service.api.refusals import Refusal
from service.api.scalars import JSON, DateTime
from service.auth.roles import Principal, Role
from service.domain import history
from service.domain.anomalies import Anomaly as Flag
from service.domain.health import HealthStatus
from service.domain.history import SyncEvent
from service.domain.outcomes import ChangeStatus
from service.domain.ports import Committed
from service.events.hub import Predicate, Subscription, View
from service.store import identity, refusals

if TYPE_CHECKING:
    from service.services import Services


@strawberry.enum
class RefusalEventType(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"  # a refused change was retried and refused again
    RESOLVED = "RESOLVED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    DISMISSED = "DISMISSED"


EVENT_TYPES = {
    history.REFUSAL_RESOLVED: RefusalEventType.RESOLVED,
    history.REFUSAL_ACKNOWLEDGED: RefusalEventType.ACKNOWLEDGED,
    history.REFUSAL_DISMISSED: RefusalEventType.DISMISSED,
    history.PUSH_REFUSED: RefusalEventType.CREATED,
}
REFUSAL_ACTIONS = {ChangeStatus.REFUSED.value, *EVENT_TYPES}
STATUS_ACTIONS = {history.PUSH, history.STATUS_REPORTED}


@strawberry.type
class RefusalEvent:
    type: RefusalEventType
    refusal: Refusal
    at: DateTime


@strawberry.type
class SyncStatusEvent:
    device: Device
    rep: User | None
    status: HealthStatus
    sync_id: strawberry.ID | None
    at: DateTime
    queue_depth: int | None
    counts: JSON


@dataclass(frozen=True)
class _DeviceStatus:
    device: identity.Device
    rep: identity.User | None
    status: HealthStatus


def _scope(info: Info, rep_id: strawberry.ID | None) -> tuple[Principal, str | None]:
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP)
    if principal.role is Role.REP:
        if rep_id not in (None, principal.user_id):
            raise Forbidden("a rep sees only its own events")
        return principal, principal.user_id
    return principal, str(rep_id) if rep_id else None


async def refusal_events(info: Info, rep_id: strawberry.ID | None = None) -> AsyncGenerator[RefusalEvent]:
    principal, rep = _scope(info, rep_id)

    def accepts(event: SyncEvent) -> bool:
        return event.action in REFUSAL_ACTIONS and rep in (None, event.rep_id)

    view = View("refusal", partial(_refusals, info.context.services), _written_refusal)
    async with _subscribe(info, principal, accepts, view) as subscription:
        async for delivery in subscription.events():
            event, refusal = delivery.event, delivery.shown
            kind = EVENT_TYPES.get(event.action)
            if kind is None:
                kind = (
                    RefusalEventType.CREATED
                    if event.attempt in (None, 1) or refusal.attempts <= 1
                    else RefusalEventType.UPDATED
                )
            yield RefusalEvent(type=kind, refusal=Refusal.of(refusal), at=event.at)
        _raise_end(subscription)


async def sync_status(
    info: Info, rep_id: strawberry.ID | None = None, device_id: strawberry.ID | None = None
) -> AsyncGenerator[SyncStatusEvent]:
    principal, rep = _scope(info, rep_id)

    def accepts(event: SyncEvent) -> bool:
        return event.action in STATUS_ACTIONS and rep in (None, event.rep_id) and device_id in (None, event.device_id)

    async with _subscribe(info, principal, accepts, status_view(info.context.services)) as subscription:
        async for delivery in subscription.events():
            event, snapshot = delivery.event, delivery.shown
            yield SyncStatusEvent(
                device=Device.of(snapshot.device),
                rep=User.of(snapshot.rep) if snapshot.rep else None,
                status=snapshot.status,
                sync_id=strawberry.ID(event.sync_id) if event.sync_id else None,
                at=event.at,
                queue_depth=event.detail.get("queueDepth"),
                counts=event.detail.get("counts", {}),
            )
        _raise_end(subscription)


async def anomaly_events(info: Info, rep_id: strawberry.ID | None = None) -> AsyncGenerator[AnomalyEvent]:
    """Flags as they are raised and reviewed; a rep receives its own only."""
    principal, rep = _scope(info, rep_id)

    def accepts(event: SyncEvent) -> bool:
        return event.action in ANOMALY_EVENT_TYPES and rep in (None, event.rep_id)

    view = View("anomaly", partial(_anomalies, info.context.services), _written_anomaly)
    async with _subscribe(info, principal, accepts, view) as subscription:
        async for delivery in subscription.events():
            event = delivery.event
            yield AnomalyEvent(type=ANOMALY_EVENT_TYPES[event.action], anomaly=Anomaly.of(delivery.shown), at=event.at)
        _raise_end(subscription)


@asynccontextmanager
async def _subscribe(info: Info, principal: Principal, accepts: Predicate, view: View) -> AsyncIterator[Subscription]:
    async with info.context.services.events.subscribe(
        accepts,
        view,
        device_id=principal.device_id,
        on_overflow=info.context.extra.get("on_overflow"),  # the WebSocket transport closes the connection (1013)
    ) as subscription:
        if (went_live := info.context.extra.get("on_subscribed")) is not None:
            went_live()  # a broadcast's followers count from now on
        yield subscription


def _raise_end(subscription: Subscription) -> None:
    """A subscription the hub ended tells its client why: it never just goes silent."""
    if subscription.failure is not None:
        raise subscription.failure  # masked to UNAVAILABLE or INTERNAL on its way out
    if subscription.closed_by:
        raise GraphQLError(subscription.closed_by, extensions={"code": "SUBSCRIPTION_CLOSED"})


def _written_refusal(event: SyncEvent, committed: Committed) -> refusals.Refusal | None:
    return committed.refusals.get(str(event.detail.get("refusalId", "")))


def _written_anomaly(event: SyncEvent, committed: Committed) -> Flag | None:
    return committed.anomalies.get(str(event.detail.get("anomalyId", "")))


def status_view(services: Services) -> View:
    """What ``syncStatus`` shows of an event: the device, its rep and its status, from what the push wrote
    when that needs no read, else read once per batch of events."""
    return View("status", partial(_device_statuses, services), partial(_written_status, services))


def _written_status(services: Services, event: SyncEvent, committed: Committed) -> _DeviceStatus | None:
    """The pushing device's status from what its commit wrote, when that needs no read."""
    device = committed.device
    if not isinstance(device, identity.Device) or device.id != event.device_id:
        return None
    rep, status = services.users.known(device.user_id), services.health.status_without_reads(device)
    return _DeviceStatus(device, rep, status) if rep is not None and status is not None else None


async def _refusals(services: Services, events: list[SyncEvent]) -> list[refusals.Refusal | None]:
    found = await refusals.get_many(services.store, (str(e.detail.get("refusalId", "")) for e in events))
    return [found.get(str(e.detail.get("refusalId", ""))) for e in events]


async def _anomalies(services: Services, events: list[SyncEvent]) -> list[Flag | None]:
    found = await services.anomalies.get_many([str(e.detail.get("anomalyId", "")) for e in events])
    return [found.get(str(e.detail.get("anomalyId", ""))) for e in events]


async def _device_statuses(services: Services, events: list[SyncEvent]) -> list[_DeviceStatus | None]:
    """Read once per batch of events for all their subscribers (the hub shares it), in a fixed number of reads."""
    device_ids = sorted({e.device_id for e in events if e.device_id})
    devices = await identity.get_devices(services.store, device_ids)
    reps = await services.users.get_many(sorted({d.user_id for d in devices.values()}))
    statuses = await services.health.device_statuses(sorted(devices), devices)
    shown = {i: _DeviceStatus(d, reps.get(d.user_id), statuses[i]) for i, d in devices.items()}
    return [shown.get(e.device_id or "") for e in events]
