"""The event follower on the embedded store: told where each commit moved the head, it reads what
another instance committed at once, and leaves an idle store alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pymongo import monitoring

from service.domain.history import SyncEvent
from service.domain.ports import Committed
from service.events.follower import Follower
from service.events.hub import EventHub, View
from service.settings import Settings
from service.store import history, sequence
from service.store.database import Store, connect
from service.store.embedded import start_embedded_store
from service.store.transactions import UnitOfWork
from service.store.write_batch import WriteBatch


class Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += event.command_name == "find"

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def watched(settings: Settings, store: Store, embedded: bool) -> AsyncIterator[tuple[Store, Finds]]:
    finds = Finds()
    assert settings.mongodb_uri is not None
    follower_store = connect(settings.mongodb_uri, settings.database, embedded=embedded, event_listeners=[finds])
    try:
        yield follower_store, finds
    finally:
        await follower_store.close()


async def commit_event(store: Store, record_id: str) -> Committed:
    event = SyncEvent(action="APPLIED", at=datetime.now(UTC), rep_id="ali", record_id=record_id)

    async def work(tx):  # type: ignore[no-untyped-def]
        numbers = await sequence.take(store, tx, 2)  # a record's number, then its event's
        writes = WriteBatch(store)
        events = history.append(writes, [event], numbers[1:])
        await writes.send(tx)
        return Committed({}, events, numbers=numbers)

    return await UnitOfWork(store).run(work)


async def test_a_woken_follower_reads_another_instances_commit_and_an_idle_one_reads_nothing(
    store: Store, watched: tuple[Store, Finds]
):
    follower_store, finds = watched
    hub = EventHub()
    follower = Follower(follower_store, hub, poll_interval=3600, told=True)
    await follower.start()
    try:
        async with hub.subscribe(lambda event: True, View("event", _as_published)) as subscription:
            await asyncio.sleep(0)  # the follower's first look, then it waits
            committed = await commit_event(store, "v1")  # written by "another instance"
            follower.moved(committed.numbers[-1])
            delivery = await asyncio.wait_for(anext(subscription.events()), 5)
            assert delivery.event.record_id == "v1"
            looked = finds.count
            follower.moved(committed.numbers[-1])  # said again: the head did not move
            for _ in range(20):  # nothing committed since: it sends nothing
                await asyncio.sleep(0)
            assert finds.count == looked
    finally:
        await follower.stop()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The position each read of events (``history.after``) started from."""
    started: list[int] = []
    after = history.after

    async def counted(store: Store, last: int, limit: int) -> list[SyncEvent]:
        started.append(last)
        return await after(store, last, limit)

    monkeypatch.setattr(history, "after", counted)
    return started


async def test_with_nobody_subscribed_the_follower_reads_no_events(
    store: Store, watched: tuple[Store, Finds], reads: list[int]
):
    follower_store, _ = watched
    hub = EventHub()
    follower = Follower(follower_store, hub, poll_interval=0.05, told=True)
    await follower.start()
    try:
        follower.moved((await commit_event(store, "v1")).numbers[-1])
        await asyncio.sleep(0.5)  # several looks
        assert reads == []
        async with hub.subscribe(lambda event: True, View("event", _as_published)) as subscription:
            await commit_event(store, "v2")
            delivery = await asyncio.wait_for(anext(subscription.events()), 5)
            assert delivery.event.record_id == "v2"  # v1 committed before anyone followed: passed by
    finally:
        await follower.stop()


async def test_the_follower_does_not_read_back_this_processs_own_commits_but_reads_the_others(
    store: Store, watched: tuple[Store, Finds], reads: list[int]
):
    follower_store, _ = watched
    hub = EventHub()
    follower = Follower(follower_store, hub, poll_interval=3600, told=True)
    await follower.start()
    try:
        async with hub.subscribe(lambda event: True, View("event", _as_published)) as subscription:
            await asyncio.sleep(0)  # the follower's first look, then it waits
            events = subscription.events()
            mine = await commit_event(store, "mine")
            hub.publish_committed(mine)  # as this process's sync service does
            follower.moved(mine.numbers[-1])
            assert (await asyncio.wait_for(anext(events), 5)).event.record_id == "mine"
            await asyncio.sleep(0.2)  # the follower looked: the head moved by this process's commit only
            assert reads == []
            await commit_event(store, "theirs")  # another instance's
            mine = await commit_event(store, "mine again")
            hub.publish_committed(mine)
            follower.moved(mine.numbers[-1])
            delivered = {(await asyncio.wait_for(anext(events), 5)).event.record_id for _ in range(2)}
            assert delivered == {"theirs", "mine again"}
            assert len(reads) == 1  # read once, from the last number it had: theirs
    finally:
        await follower.stop()


async def test_the_embedded_store_says_where_each_commit_moved_a_databases_sequence():
    embedded = start_embedded_store(None)
    said: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    store, other = connect(embedded.uri, "said", embedded=True), connect(embedded.uri, "other", embedded=True)
    try:
        embedded.listen(lambda database, head: said.put_nowait((database, head)))
        await store.db["things"].insert_one({"_id": "a"})  # a commit that takes no number: nothing to say
        async with store.client.start_session() as session, await session.start_transaction():
            assert await sequence.take(store, session, 3) == range(1, 4)
            await asyncio.sleep(0.2)
            assert said.empty()  # not before the commit
        assert await asyncio.wait_for(said.get(), 10) == ("said", 3)
        async with other.client.start_session() as session:
            await session.start_transaction()
            await sequence.take(other, session, 5)
            await session.abort_transaction()  # numbers taken, never committed: nothing to say
        assert await UnitOfWork(other).run(lambda tx: sequence.take(other, tx, 2)) == range(1, 3)
        assert await asyncio.wait_for(said.get(), 10) == ("other", 2)
        assert said.empty()
    finally:
        await store.close()
        await other.close()
        embedded.stop()


async def _as_published(events: list) -> list:
    return events
