"""In-process fan-out of sync events to subscribers.

Events committed by this process are published at once; events committed by other
processes arrive through a ``Follower`` (change stream or tail of the history collection).
Each event is delivered once per subscriber, in order.

The hub owns everything an event's subscribers share. One hub worker takes the events
published so far (a push's worth arrives at once), takes what subscribers are shown of
them (each ``View``, e.g. the refusal an event is about) from what their commit wrote
when this process committed them, else loads it in one read per view for the whole batch,
whatever the number of subscribers, and hands each subscriber its deliveries. Under a
stream of commits a batch that read the store is followed by the next only ``LOAD_PACE``
later, so the events arriving meanwhile share one read (a quiet feed waits for nothing). No
subscriber ever awaits shared work, so one that leaves, fails or is slow affects only itself:

- a subscriber whose backlog of undelivered events reaches ``backlog`` is ended ("too
  slow") and its ``on_overflow`` callback runs (the WebSocket transport closes the
  connection with 1013); the others are never held up;
- a view that cannot be loaded (the store stayed unavailable through the retries) ends
  the subscriptions that needed it with that failure, which they raise to their client:
  a feed is never left silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from service.domain.history import SyncEvent
from service.domain.ports import Committed
from service.store.unavailable import as_unavailable

log = logging.getLogger("fieldsync.events")

Predicate = Callable[[SyncEvent], bool]
LOAD_RETRIES = (0.1, 0.5, 2.0)  # seconds between attempts at loading a view while the store is unavailable
BATCH = 1000  # events loaded and delivered together at most
# After a batch that read the store, the next waits until this much time has passed since that read
# began: under a stream of commits, the events arriving meanwhile share one read instead of one each.
LOAD_PACE = 0.05


@dataclass(frozen=True)
class View:
    """What subscribers are shown of events: ``load`` runs once per batch of events for all subscribers of
    ``name``, for the events ``written`` cannot answer from what their commit wrote (events committed by
    this process: no store read between the commit and the first delivery)."""

    name: str
    load: Callable[[list[SyncEvent]], Awaitable[list[Any]]]  # one value per event; None: nothing to show
    written: Callable[[SyncEvent, Committed], Any] = lambda event, committed: None  # None: load it


@dataclass(frozen=True)
class Delivery:
    event: SyncEvent
    shown: Any  # the view's value for the event


class Subscription:
    def __init__(
        self,
        accepts: Predicate,
        view: View,
        backlog: int,
        device_id: str | None,
        on_overflow: Callable[[], None] | None,
    ) -> None:
        self.accepts = accepts
        self.view = view
        self.device_id = device_id
        self.closed_by: str | None = None  # why the hub ended it (e.g. its device was revoked)
        self.failure: BaseException | None = None  # the error that ended it (a view could not be loaded)
        self._queue: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize=backlog)
        self._on_overflow = on_overflow

    async def events(self) -> AsyncIterator[Delivery]:
        while (delivery := await self._queue.get()) is not None:
            yield delivery

    def _offer(self, delivery: Delivery) -> bool:
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            return False
        return True

    def _end(self, reason: str, failure: BaseException | None = None) -> None:
        """Nothing more is delivered (what was waiting is let go, its memory freed); the subscriber learns why."""
        self.closed_by, self.failure = reason, failure
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()


@dataclass
class _Pending:
    event: SyncEvent
    subscribers: list[Subscription]
    committed: Committed | None  # what the commit wrote, when this process committed the event


class EventHub:
    def __init__(
        self,
        remember: int = 10_000,
        backlog: int = 1000,
        retry_pauses: tuple[float, ...] = LOAD_RETRIES,
        load_pace: float = LOAD_PACE,
    ) -> None:
        self._subscriptions: set[Subscription] = set()
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._remember = remember
        self._backlog = backlog
        self._retry_pauses = retry_pauses
        self._load_pace = load_pace
        self._loaded_at = -math.inf  # when the last batch that read the store began reading
        self._pending: deque[_Pending] = deque()
        self._committed_here: dict[int, int] = {}  # first -> last number taken by a commit this process published
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.delivered = 0
        self.dropped_slow = 0
        # called with a revoked token's id: whoever holds feeds open for tokens (shared broadcasts) ends its own
        self.on_token_revoked: list[Callable[[str], None]] = []

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def publish_committed(self, committed: Committed) -> None:
        """Deliver the events of a commit of this process, and show subscribers what it wrote."""
        if committed.numbers:
            self._committed_here[committed.numbers.start] = committed.numbers.stop - 1
            if len(self._committed_here) > self._remember:  # no follower reads by number (a change stream)
                del self._committed_here[next(iter(self._committed_here))]
        self.publish(committed.events, committed)

    def published_through(self, last: int) -> int:
        """How far past sequence number ``last`` this process's own commits reach without a gap: their
        events are published already, so a follower at ``last`` need not read them back. The commits
        noted up to there are forgotten."""
        while (end := self._committed_here.pop(last + 1, None)) is not None:
            last = end
        for start in [start for start in self._committed_here if start <= last]:
            del self._committed_here[start]
        return last

    def publish(self, events: list[SyncEvent], committed: Committed | None = None) -> None:
        """Deliver events (from this process or a follower); ids seen before are skipped."""
        for event in events:
            if event.id is not None:
                if event.id in self._seen:
                    continue
                self._seen[event.id] = None
                if len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
            subscribers = [s for s in self._subscriptions if s.accepts(event)]
            if subscribers:
                self._pending.append(_Pending(event, subscribers, committed))
        if self._pending:
            self._wake.set()
            if self._worker is None or self._worker.done():
                self._worker = asyncio.get_running_loop().create_task(self._deliver(), name="event-hub")

    async def _deliver(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            if (wait := self._loaded_at + self._load_pace - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
            views = {s.view.name: s.view for pending in batch for s in pending.subscribers}
            shown: dict[str, dict[int, Any]] = {}
            failed: dict[str, BaseException] = {}
            for name, view in views.items():
                needing = [p for p in batch if any(s.view.name == name for s in p.subscribers)]
                shown[name] = known = {id(p): view.written(p.event, p.committed) for p in needing if p.committed}
                unknown = [p for p in needing if known.get(id(p)) is None]
                if not unknown:
                    continue
                self._loaded_at = time.monotonic()
                try:
                    values = await self._load(view, [p.event for p in unknown])
                except Exception as error:
                    failed[name] = error
                else:
                    known.update((id(p), value) for p, value in zip(unknown, values, strict=True))
            for pending in batch:
                for subscription in pending.subscribers:
                    name = subscription.view.name
                    if subscription not in self._subscriptions:
                        continue  # left (or was ended) meanwhile
                    if name in failed:
                        self._close(subscription, f"this feed could not be served ({name})", failed[name])
                    elif (value := shown[name][id(pending)]) is not None:
                        if subscription._offer(Delivery(pending.event, value)):
                            self.delivered += 1
                        else:
                            self._drop_slow(subscription)

    async def _load(self, view: View, events: list[SyncEvent]) -> list[Any]:
        for pause in (*self._retry_pauses, None):
            try:
                return await view.load(events)
            except Exception as error:
                failure = as_unavailable(error)
                if failure is None or pause is None:
                    raise
                log.info("store %s while loading %s for %d events; retrying", failure.reason, view.name, len(events))
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    def _drop_slow(self, subscription: Subscription) -> None:
        self.dropped_slow += 1
        log.info("dropping a subscriber too slow to take its events (%d waiting)", subscription.backlog)
        self._close(subscription, f"subscriber too slow: more than {self._backlog} events were waiting")
        if subscription._on_overflow is not None:
            subscription._on_overflow()

    @asynccontextmanager
    async def subscribe(
        self,
        accepts: Predicate,
        view: View,
        *,
        device_id: str | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(accepts, view, self._backlog, device_id, on_overflow)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def token_revoked(self, token_id: str) -> None:
        """A token's feeds end. Feeds are shared by callers alike, whatever their tokens, so it is
        the followers holding it that end (the listeners: ``Broadcasts.token_revoked``)."""
        for listener in self.on_token_revoked:
            listener(token_id)

    def device_revoked(self, device_id: str) -> None:
        for subscription in list(self._subscriptions):
            if subscription.device_id == device_id:
                self._close(subscription, "device revoked")

    def _close(self, subscription: Subscription, reason: str, failure: BaseException | None = None) -> None:
        self._subscriptions.discard(subscription)
        subscription._end(reason, failure)

    async def close(self) -> None:
        """Stop delivering (at shutdown)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
