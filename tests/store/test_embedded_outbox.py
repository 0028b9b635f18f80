"""service.store.embedded_outbox: the embedded SQLite store writes no change-stream outbox
(upstream writes one entry per written document), no collection hands what it writes to the
in-process change-stream hub (upstream queues a copy of each document a transaction writes),
and writes and transactions behave as before."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import mongoeco
import pytest
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.engines import SQLiteEngine
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from service.store import embedded_outbox
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION


def outbox_entries(path: Path) -> int:
    """Entries ever written to the outbox (consumed entries are pruned, and counted here)."""
    with closing(sqlite3.connect(path)) as conn:
        pending = conn.execute("SELECT count(*) FROM change_outbox").fetchone()[0]
        return int(pending + conn.execute("SELECT pruned_through FROM change_outbox_state").fetchone()[0])


def test_the_patched_store_writes_no_outbox_and_keeps_every_write(tmp_path: Path) -> None:
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient(embedded.uri) as client:
            things = client.db.things
            things.insert_many([{"_id": "a"}, {"_id": "b"}])
            things.update_one({"_id": "a"}, {"$set": {"n": 1}})
            things.delete_one({"_id": "b"})
            with client.start_session() as session:
                session.start_transaction()
                things.insert_one({"_id": "c"}, session=session)
                things.replace_one({"_id": "a"}, {"n": 2}, session=session)
                session.commit_transaction()
            assert list(things.find().sort("_id")) == [{"_id": "a", "n": 2}, {"_id": "c"}]
            with pytest.raises(PyMongoError), things.watch():  # change streams stay refused
                pass
    finally:
        embedded.stop()
    assert outbox_entries(tmp_path / "fieldsync.sqlite3") == 0


async def test_upstream_writes_an_outbox_entry_per_written_document(tmp_path: Path) -> None:
    """What the patch removes, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    path = tmp_path / "upstream.sqlite3"
    async with InProcessClient(SQLiteEngine(str(path))) as upstream:
        await upstream.db.things.insert_many([{"_id": "a"}, {"_id": "b"}])
        await upstream.db.things.update_one({"_id": "a"}, {"$set": {"n": 1}})
    assert outbox_entries(path) == 3


HUB_EVENTS = """
import asyncio, sys
from mongoeco import AsyncMongoClient
from mongoeco.engines import MemoryEngine, SQLiteEngine
from service.store import embedded_outbox

async def retained(engine):
    async with AsyncMongoClient(engine) as client:
        await client.db.things.insert_many([{"_id": "a"}, {"_id": "b"}])
        async with client.start_session() as session:
            session.start_transaction()
            await client.db.things.insert_one({"_id": "c"}, session=session)
            await client.db.things.update_one({"_id": "a"}, {"$set": {"n": 1}}, session=session)
            session.commit_transaction()
        assert await client.db.things.count_documents({}) == 3
        return client._change_hub.state.retained_events

if sys.argv[1] == "patched":
    assert embedded_outbox.apply()
print(asyncio.run(retained(MemoryEngine())), asyncio.run(retained(SQLiteEngine(sys.argv[2]))))
"""


@pytest.mark.parametrize(("patched", "retained"), [("patched", "0 0"), ("upstream", "2 2")])
def test_the_change_stream_hub_keeps_what_a_transaction_wrote_only_upstream(
    tmp_path: Path, patched: str, retained: str
) -> None:
    """Each engine, in a process of its own (the patch is global): upstream the client's hub keeps a copy of
    each document a transaction wrote; patched, nothing, and every write is there as before."""
    assert mongoeco.__version__ == PINNED_VERSION
    ran = subprocess.run(
        [sys.executable, "-c", HUB_EVENTS, patched, str(tmp_path / "hub.sqlite3")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.split() == retained.split()


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_outbox.apply() is False
