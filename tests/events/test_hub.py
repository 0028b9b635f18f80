"""The event hub on its own: shared loads, subscribers that leave, fall behind or cannot be served."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pymongo.errors import AutoReconnect

from service.domain.history import SyncEvent
from service.domain.ports import Committed
from service.events.hub import EventHub, Subscription, View


def event(n: int) -> SyncEvent:
    return SyncEvent(action="REFUSED", at=datetime(2026, 11, 30, tzinfo=UTC), rep_id="rep-1", id=n)


async def take(subscription: Subscription, n: int) -> list[int | None]:
    events = subscription.events()
    return [(await anext(events)).event.id for _ in range(n)]


async def test_a_batch_is_loaded_once_for_every_subscriber_and_a_leaver_changes_nothing_for_the_rest():
    loads: list[list[int | None]] = []
    release = asyncio.Event()

    async def load(events: list[SyncEvent]) -> list[str]:
        loads.append([e.id for e in events])
        await release.wait()  # the shared read is still in flight when one subscriber leaves
        return [f"shown {e.id}" for e in events]

    hub, view = EventHub(), View("refusal", load)
    async with hub.subscribe(lambda e: True, view) as first, hub.subscribe(lambda e: True, view) as second:
        async with hub.subscribe(lambda e: True, view):
            hub.publish([event(1), event(2)])
            await asyncio.sleep(0)
        release.set()  # the third left mid-load
        assert await take(first, 2) == [1, 2] and await take(second, 2) == [1, 2]
        hub.publish([event(3)])
        assert await take(first, 1) == [3] and await take(second, 1) == [3]
    assert loads == [[1, 2], [3]]
    await hub.close()


async def test_events_arriving_soon_after_a_load_share_the_next_one_and_a_quiet_feed_waits_for_nothing():
    loads: list[list[int | None]] = []

    async def load(events: list[SyncEvent]) -> list[int | None]:
        loads.append([e.id for e in events])
        return [e.id for e in events]

    hub, view = EventHub(load_pace=0.3), View("refusal", load)
    async with hub.subscribe(lambda e: True, view) as subscriber:
        started = asyncio.get_running_loop().time()
        hub.publish([event(1)])
        assert await take(subscriber, 1) == [1]
        assert asyncio.get_running_loop().time() - started < 0.2  # the first is shown at once
        for n in (2, 3, 4):  # a stream of commits: they wait for the pace and share one read
            hub.publish([event(n)])
            await asyncio.sleep(0.02)
        assert await take(subscriber, 3) == [2, 3, 4]
        assert asyncio.get_running_loop().time() - started >= 0.3
        await asyncio.sleep(0.35)  # quiet for longer than the pace: the next is shown at once again
        shown_at = asyncio.get_running_loop().time()
        hub.publish([event(5)])
        assert await take(subscriber, 1) == [5]
        assert asyncio.get_running_loop().time() - shown_at < 0.2
    assert loads == [[1], [2, 3, 4], [5]]
    await hub.close()


async def test_a_subscriber_too_far_behind_is_ended_and_told_why_while_the_others_go_on():
    async def load(events: list[SyncEvent]) -> list[int | None]:
        return [e.id for e in events]

    overflowed: list[str] = []
    hub, view = EventHub(backlog=3), View("refusal", load)
    async with (
        hub.subscribe(lambda e: True, view) as reader,
        hub.subscribe(lambda e: True, view, on_overflow=lambda: overflowed.append("closed")) as stuck,
    ):
        for n in range(1, 7):
            hub.publish([event(n)])
            assert await take(reader, 1) == [n]  # the reader keeps up; the stuck one never reads
        assert overflowed == ["closed"] and hub.dropped_slow == 1
        assert [d.event.id async for d in stuck.events()] == []  # its backlog is let go: it only learns why
        assert stuck.closed_by == "subscriber too slow: more than 3 events were waiting"
        assert hub.subscriber_count == 1
    await hub.close()


async def test_a_view_the_store_cannot_serve_ends_its_subscribers_with_that_failure_after_retries():
    attempts = 0

    async def load(events: list[SyncEvent]) -> list[int | None]:
        nonlocal attempts
        attempts += 1
        raise AutoReconnect("127.0.0.1:27017: connection refused")

    hub = EventHub(retry_pauses=(0, 0))
    async with hub.subscribe(lambda e: True, View("status", load)) as subscription:
        hub.publish([event(1)])
        assert [d async for d in subscription.events()] == []  # ended, not silent
    assert attempts == 3
    assert isinstance(subscription.failure, AutoReconnect)
    assert subscription.closed_by == "this feed could not be served (status)"
    await hub.close()


async def test_what_a_commit_of_this_process_wrote_is_shown_without_a_read_and_the_rest_is_loaded():
    loads: list[list[int | None]] = []

    async def load(events: list[SyncEvent]) -> list[str]:
        loads.append([e.id for e in events])
        return [f"read {e.id}" for e in events]

    def written(event: SyncEvent, committed: Committed) -> str | None:
        return committed.refusals.get(str(event.id))  # type: ignore[return-value]

    hub, view = EventHub(), View("refusal", load, written)
    async with hub.subscribe(lambda e: True, view) as subscription:
        committed = Committed({}, [event(1), event(2)], refusals={"1": "as written 1"})  # type: ignore[dict-item]
        hub.publish_committed(committed)
        hub.publish([event(3)])  # another instance's, through a follower
        shown = subscription.events()
        assert [(await anext(shown)).shown for _ in range(3)] == ["as written 1", "read 2", "read 3"]
    assert loads == [[2, 3]]
    await hub.close()
