"""The embedded store's transaction workarounds (service/store/embedded_transactions.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from service.store.embedded import EmbeddedStore, start_embedded_store


@pytest.fixture(params=["memory", "sqlite"])
def embedded_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = start_embedded_store(tmp_path if request.param == "sqlite" else None)
    try:
        yield store
    finally:
        store.stop()


def test_a_command_waits_for_another_sessions_transaction_instead_of_failing(embedded_store: EmbeddedStore):
    with MongoClient(embedded_store.uri) as client:
        collection = client.db.things
        collection.insert_one({"_id": "seed"})
        session = client.start_session()
        session.start_transaction()
        collection.insert_one({"_id": "in-transaction"}, session=session)
        reads: list[list[str]] = []
        reader = threading.Thread(target=lambda: reads.append(sorted(d["_id"] for d in collection.find())))
        reader.start()
        time.sleep(0.2)  # the reader is now waiting on the SQLite engine (or has read, on memory)
        session.commit_transaction()
        reader.join(timeout=30)
        session.end_session()
    assert reads and reads[0] in (["seed"], ["in-transaction", "seed"])


def test_a_commit_that_loses_a_write_conflict_leaves_no_stale_transaction(tmp_path: Path):
    store = start_embedded_store(None)  # the memory engine lets transactions race
    try:
        with MongoClient(store.uri) as client, MongoClient(store.uri) as observer:
            collection = client.db.things
            first, second = client.start_session(), client.start_session()
            first.start_transaction()
            collection.insert_one({"_id": "first"}, session=first)
            second.start_transaction()
            collection.insert_one({"_id": "second"}, session=second)
            second.commit_transaction()
            with pytest.raises(OperationFailure, match="Write conflict"):
                first.commit_transaction()
            first.end_session()
            second.end_session()
            collection.insert_one({"_id": "later"})  # on a pooled session: must really commit
            assert sorted(d["_id"] for d in observer.db.things.find()) == ["later", "second"]
    finally:
        store.stop()


def test_a_transaction_waits_for_another_sessions_transaction_and_starts_when_it_ends(tmp_path: Path):
    store = start_embedded_store(tmp_path)  # the SQLite engine runs one transaction at a time
    try:
        with MongoClient(store.uri) as first, MongoClient(store.uri) as second:
            ended: list[float] = []

            def other_transaction() -> None:
                with second.start_session() as session:
                    session.start_transaction()
                    second.db.things.insert_one({"_id": "second"}, session=session)
                    session.commit_transaction()
                ended.append(time.monotonic())

            with first.start_session() as session:
                session.start_transaction()
                first.db.things.insert_one({"_id": "first"}, session=session)
                waiting = threading.Thread(target=other_transaction)
                waiting.start()
                time.sleep(0.3)
                assert waiting.is_alive()  # waiting in the store, not failed
                session.commit_transaction()
                committed = time.monotonic()
            waiting.join(timeout=30)
            assert ended and ended[0] - committed < 1  # woken by the commit, not by a client-side retry
            assert sorted(d["_id"] for d in first.db.things.find()) == ["first", "second"]
    finally:
        store.stop()


async def test_a_waiting_transaction_tries_again_only_when_the_open_one_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each try decodes its command again; a waiter that looked every ``POLL`` seconds while the
    transaction stayed open tried (and was refused) once a look."""
    from mongoeco.engines import SQLiteEngine
    from mongoeco.engines._sqlite_session_runtime import SQLiteSessionRuntime
    from mongoeco.wire import AsyncMongoEcoProxyServer
    from mongoeco.wire.executor import WireCommandExecutor
    from pymongo import AsyncMongoClient

    from service.store import embedded_transactions

    patched = [(WireCommandExecutor, "execute_prepared"), (AsyncMongoEcoProxyServer, "_dispatch_wire_request")]
    patched += [(SQLiteSessionRuntime, f"{verb}_session_transaction") for verb in ("start", "commit", "abort")]
    for cls, name in patched:
        monkeypatch.setattr(cls, name, getattr(cls, name))  # put back after the test
    refused: list[str] = []
    decode = AsyncMongoEcoProxyServer._decode_wire_context

    def counted(self: object, *args: object) -> object:
        try:
            return decode(self, *args)
        except Exception as error:
            refused.append(str(error))
            raise

    monkeypatch.setattr(AsyncMongoEcoProxyServer, "_decode_wire_context", counted)
    monkeypatch.setattr(embedded_transactions, "POLL", 0.2)
    embedded_transactions._wait_for_transactions()
    engine = SQLiteEngine(str(tmp_path / "store.sqlite3"))
    async with AsyncMongoEcoProxyServer(engine=engine) as server, AsyncMongoClient(server.address.uri) as client:
        things = client.db.things
        async with client.start_session() as first, client.start_session() as second:
            await first.start_transaction()
            await things.insert_one({"_id": "first"}, session=first)
            await second.start_transaction()
            waiting = asyncio.create_task(things.insert_one({"_id": "second"}, session=second))
            await asyncio.sleep(1.0)  # five looks
            assert not waiting.done()
            await first.commit_transaction()
            await waiting
            await second.commit_transaction()
        assert sorted(d["_id"] for d in await things.find().to_list()) == ["first", "second"]
    assert len(refused) == 1 and embedded_transactions.BUSY in refused[0]
