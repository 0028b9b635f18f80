"""service.store.embedded_transaction_thread: on the embedded SQLite store, a transaction's engine
work runs on the event loop's thread, and everything else still on the engine's worker threads.

Which thread ran a statement is seen from SQLite itself: a trace callback on the engine's write
connection runs on the thread that executes each statement."""

from __future__ import annotations

import threading
from pathlib import Path

import mongoeco
import pytest
from mongoeco.engines import SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire.executor import WireCommandExecutor
from pymongo import AsyncMongoClient

from service.store import embedded_transaction_thread
from service.store.embedded_pin import PINNED_VERSION


async def statement_threads(path: Path) -> tuple[set[str], set[str]]:
    """The threads that ran the statements of a transaction, and those of the writes after it."""
    engine = SQLiteEngine(str(path))
    ran: list[str] = []
    async with AsyncMongoEcoProxyServer(engine=engine) as server, AsyncMongoClient(server.address.uri) as client:
        things = client.db.things
        await things.insert_one({"_id": "before"})
        engine._connection.set_trace_callback(lambda _sql: ran.append(threading.current_thread().name))
        async with client.start_session() as session, await session.start_transaction():
            await things.insert_one({"_id": "inside"}, session=session)
            await things.update_one({"_id": "before"}, {"$set": {"n": 1}}, session=session)
            assert await things.find_one({"_id": "inside"}, session=session) == {"_id": "inside"}
        in_transaction = set(ran)
        ran.clear()
        await things.insert_one({"_id": "after"})
        await things.update_one({"_id": "after"}, {"$set": {"n": 2}})
        assert [d["_id"] async for d in things.find().sort("_id")] == ["after", "before", "inside"]
    return in_transaction, set(ran)


async def test_a_transactions_statements_run_on_the_loops_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for cls, name in ((WireCommandExecutor, "execute_prepared"), (SQLiteEngine, "_run_blocking")):
        monkeypatch.setattr(cls, name, getattr(cls, name))  # put back after the test
    monkeypatch.setattr(embedded_transaction_thread, "_ORIGINALS", {})
    assert embedded_transaction_thread.apply()
    in_transaction, after = await statement_threads(tmp_path / "patched.sqlite3")
    assert in_transaction == {threading.current_thread().name}
    assert after and all(name.startswith("mongoeco-sqlite") for name in after)


async def test_upstream_runs_a_transactions_statements_on_worker_threads(tmp_path: Path) -> None:
    """What the patch changes, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    in_transaction, after = await statement_threads(tmp_path / "upstream.sqlite3")
    assert any(name.startswith("mongoeco-sqlite") for name in in_transaction)
    assert after and all(name.startswith("mongoeco-sqlite") for name in after)


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_transaction_thread.apply() is False
