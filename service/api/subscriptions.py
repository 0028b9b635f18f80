"""Live feeds for dashboards: refusal events and device sync status."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLError

from service.api.context import Forbidden, Info
from service.api.identity import Device, User
from service.api.refusals import Refusal
from service.api.scalars import JSON, DateTime
from service.auth.roles import Principal, Role
from service.domain import history
from service.domain.health import HealthStatus
from service.domain.history import SyncEvent
from service.domain.outcomes import ChangeStatus
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


class EventSnapshots:
    """What an event's subscribers are shown, read from the store once per event, whatever their number.

    Concurrent subscribers of one event share one read (a task), not one read each.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self._entries: OrderedDict[tuple[str, int], asyncio.Task[Any]] = OrderedDict()
        self._capacity = capacity

    async def get[T](self, view: str, event: SyncEvent, load: Callable[[], Awaitable[T]]) -> T:
        key = (view, event.id or 0)
        task = self._entries.get(key)
        if task is None:
            task = self._entries[key] = asyncio.ensure_future(load())
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return await task


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
    services = info.context.services

    def accepts(event: SyncEvent) -> bool:
        return event.action in REFUSAL_ACTIONS and rep in (None, event.rep_id)

    async with services.events.subscribe(
        accepts, token_id=principal.token_id, device_id=principal.device_id
    ) as subscription:
        async for event in subscription.events():
            refusal_id = str(event.detail.get("refusalId", ""))
            refusal = await services.snapshots.get("refusal", event, partial(refusals.get, services.store, refusal_id))
            if refusal is None:
                continue
            kind = EVENT_TYPES.get(event.action)
            if kind is None:
                kind = (
                    RefusalEventType.CREATED
                    if event.attempt in (None, 1) or refusal.attempts <= 1
                    else RefusalEventType.UPDATED
                )
            yield RefusalEvent(type=kind, refusal=Refusal.of(refusal), at=event.at)
        if subscription.closed_by:
            raise GraphQLError(subscription.closed_by, extensions={"code": "SUBSCRIPTION_CLOSED"})


async def sync_status(
    info: Info, rep_id: strawberry.ID | None = None, device_id: strawberry.ID | None = None
) -> AsyncGenerator[SyncStatusEvent]:
    principal, rep = _scope(info, rep_id)
    services = info.context.services

    def accepts(event: SyncEvent) -> bool:
        return event.action in STATUS_ACTIONS and rep in (None, event.rep_id) and device_id in (None, event.device_id)

    async with services.events.subscribe(
        accepts, token_id=principal.token_id, device_id=principal.device_id
    ) as subscription:
        async for event in subscription.events():
            snapshot = await services.snapshots.get("status", event, partial(_device_status, services, event))
            if snapshot is None:
                continue
            yield SyncStatusEvent(
                device=Device.of(snapshot.device),
                rep=User.of(snapshot.rep) if snapshot.rep else None,
                status=snapshot.status,
                sync_id=strawberry.ID(event.sync_id) if event.sync_id else None,
                at=event.at,
                queue_depth=event.detail.get("queueDepth"),
                counts=event.detail.get("counts", {}),
            )
        if subscription.closed_by:
            raise GraphQLError(subscription.closed_by, extensions={"code": "SUBSCRIPTION_CLOSED"})


async def _device_status(services: Services, event: SyncEvent) -> _DeviceStatus | None:
    device = await identity.get_device(services.store, event.device_id or "")
    if device is None:
        return None
    rep = await identity.get_user(services.store, device.user_id)
    return _DeviceStatus(device, rep, await services.health.device_status(device.id))
