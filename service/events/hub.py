"""In-process fan-out of sync events to subscribers.

Events committed by this process are published at once; events committed by
other processes arrive through a ``Follower`` (change stream or tail of the
history collection). Each event is delivered once per subscriber.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from service.domain.history import SyncEvent

Predicate = Callable[[SyncEvent], bool]


@dataclass(eq=False)
class Subscription:
    accepts: Predicate
    queue: asyncio.Queue[SyncEvent | None] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    closed_by: str | None = None  # why the hub closed it (e.g. its token was revoked)
    token_id: str | None = None
    device_id: str | None = None

    async def events(self) -> AsyncIterator[SyncEvent]:
        while (event := await self.queue.get()) is not None:
            yield event


class EventHub:
    def __init__(self, remember: int = 10_000) -> None:
        self._subscriptions: set[Subscription] = set()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._remember = remember
        self.delivered = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def publish(self, events: list[SyncEvent]) -> None:
        """Deliver events (from this process or a follower); ids seen before are skipped."""
        for event in events:
            if event.id is not None:
                if event.id in self._seen:
                    continue
                self._seen[event.id] = None
                if len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
            for subscription in list(self._subscriptions):
                if subscription.accepts(event):
                    self._offer(subscription, event)

    def _offer(self, subscription: Subscription, event: SyncEvent) -> None:
        try:
            subscription.queue.put_nowait(event)
            self.delivered += 1
        except asyncio.QueueFull:
            self._close(subscription, "subscriber too slow: events were dropped")

    @asynccontextmanager
    async def subscribe(
        self, accepts: Predicate, *, token_id: str | None = None, device_id: str | None = None
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(accepts, token_id=token_id, device_id=device_id)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def token_revoked(self, token_id: str) -> None:
        for subscription in list(self._subscriptions):
            if subscription.token_id == token_id:
                self._close(subscription, "token revoked")

    def device_revoked(self, device_id: str) -> None:
        for subscription in list(self._subscriptions):
            if subscription.device_id == device_id:
                self._close(subscription, "device revoked")

    def _close(self, subscription: Subscription, reason: str) -> None:
        subscription.closed_by = reason
        self._subscriptions.discard(subscription)
        while True:  # make room for the end marker
            try:
                subscription.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                subscription.queue.get_nowait()
