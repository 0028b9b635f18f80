"""The history collection on the real store: retention, counting in the database, resumable streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.history import PUSH, SyncEvent
from service.domain.report import ActionTally
from service.settings import Settings
from service.store import history, sequence
from service.store.database import Store, connect
from service.store.transactions import UnitOfWork
from service.store.write_batch import WriteBatch
from tests.store.watched import Commands

T0 = datetime(2026, 3, 8, 5, tzinfo=UTC)  # midnight in New York on its 23-hour day


@pytest.fixture
def settings(mongo_uri: str, database_name: str) -> Settings:
    # Retention as an operator sets it; long enough that the fixed dates below are not expired.
    environ = {"FIELDSYNC_RETENTION_DAYS": "3650"}
    return Settings.from_env(environ, mongodb_uri=mongo_uri, database=database_name, admin_token="admin-secret-token")


@pytest.fixture
async def watched(store: Store, settings: Settings, embedded: bool) -> AsyncIterator[tuple[Store, Commands]]:
    """A second client on the same database whose commands are recorded."""
    commands = Commands()
    assert settings.mongodb_uri is not None
    other = connect(settings.mongodb_uri, settings.database, embedded=embedded, event_listeners=[commands])
    try:
        yield other, commands
    finally:
        await other.close()


async def record(store: Store, events: list[SyncEvent]) -> list[SyncEvent]:
    """Events as a commit writes them: numbered and inserted in one transaction."""

    async def work(tx):  # type: ignore[no-untyped-def]
        writes = WriteBatch(store)
        stored = history.append(writes, events, await sequence.take(store, tx, len(events)))
        await writes.send(tx)
        return stored

    return await UnitOfWork(store).run(work)


def event(action: str, at: datetime, rep: str | None = "ali", device: str | None = "ali-phone") -> SyncEvent:
    return SyncEvent(action=action, at=at, rep_id=rep, device_id=device, utc_offset_minutes=-300)


async def test_history_expires_through_a_ttl_index_with_the_configured_retention(store: Store, settings: Settings):
    indexes = await store.db[history.COLLECTION].index_information()
    assert indexes["retention"]["key"] == [("at", 1)]
    assert indexes["retention"]["expireAfterSeconds"] == 3650 * 86_400 == settings.retention_days * 86_400


async def test_the_database_counts_a_window_per_rep_and_action(store: Store, watched):
    start, end = T0, T0 + timedelta(hours=23)
    await record(
        store,
        [
            event("APPLIED", start - timedelta(milliseconds=1)),  # the day before
            event("APPLIED", start),  # the first instant is in
            event("APPLIED", start + timedelta(hours=3)),
            event("DUPLICATE", start + timedelta(hours=4)),
            event(PUSH, start + timedelta(hours=4)),
            event(PUSH, start + timedelta(hours=5), device="ali-tablet"),
            event("REFUSED", start + timedelta(hours=6), rep="siti", device="siti-phone"),
            event(PUSH, start + timedelta(hours=6), rep="siti", device="siti-phone"),
            event("RECORD_WRITTEN", start + timedelta(hours=7), rep=None, device=None),
            event(PUSH, end - timedelta(milliseconds=1), rep="siti", device="siti-phone"),  # the last instant is in
            event(PUSH, end, rep="omar", device="omar-phone"),  # the next day
        ],
    )
    other, commands = watched
    tallies = await history.count_actions(other, start, end)
    pushed = await history.devices_pushed(other, start, end)
    assert commands.names == ["aggregate", "aggregate"]  # counted by the database, not by loading events
    assert sorted(tallies, key=lambda t: (t.rep_id or "", t.action)) == [
        ActionTally(None, "RECORD_WRITTEN", 1),
        ActionTally("ali", "APPLIED", 2),
        ActionTally("ali", "DUPLICATE", 1),
        ActionTally("ali", PUSH, 2),
        ActionTally("siti", PUSH, 2),
        ActionTally("siti", "REFUSED", 1),
    ]
    assert sorted(pushed) == [("ali-phone", "ali"), ("ali-tablet", "ali"), ("siti-phone", "siti")]
    siti = await history.count_actions(store, start, end, rep_id="siti")
    assert sorted(siti, key=lambda t: t.action) == [ActionTally("siti", PUSH, 2), ActionTally("siti", "REFUSED", 1)]
    assert await history.devices_pushed(store, start, end, rep_id="siti") == [("siti-phone", "siti")]


async def test_a_stream_reads_in_batches_and_resumes_after_an_event_id(store: Store, watched):
    stored = await record(store, [event("APPLIED", T0 + timedelta(seconds=n)) for n in range(25)])
    ids = [e.id or 0 for e in stored]
    other, commands = watched
    streamed = [
        int(document["_id"]) async for document in history.stream(other, history.HistoryFilter(), batch_size=10)
    ]
    assert streamed == ids
    assert commands.names == ["find", "getMore", "getMore"]  # one batch of 10 in memory at a time
    resumed = history.stream(other, history.HistoryFilter(actions=("APPLIED",)), batch_size=10, after_id=ids[19])
    assert [int(document["_id"]) async for document in resumed] == ids[20:]
