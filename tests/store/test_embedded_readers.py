"""service.store.embedded_readers: on the embedded SQLite store, reads outside a transaction
neither wait for another session's transaction nor see its uncommitted writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.engines import SQLiteEngine
from pymongo import MongoClient
from pymongo.collection import Collection

from service.store import embedded_readers
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION

Document = dict[str, Any]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoClient[Document]]:
    embedded = start_embedded_store(Path(tmp_path_factory.mktemp("readers")))
    mongo: MongoClient[Document] = MongoClient(embedded.uri)
    try:
        yield mongo
    finally:
        mongo.close()
        embedded.stop()


@pytest.fixture
def coll(client: MongoClient[Document], request: pytest.FixtureRequest) -> Collection[Document]:
    collection = client["readers"][request.node.name]
    collection.create_index("owner")
    collection.insert_many([{"_id": f"c{n}", "owner": "r1", "n": n} for n in range(5)])
    return collection


def reads(coll: Collection[Document]) -> dict[str, Any]:
    return {
        "find": sorted(d["_id"] for d in coll.find({"owner": "r1"})),
        "find_one": coll.find_one({"_id": "new"}),
        "count": coll.count_documents({}),
        "distinct": sorted(coll.distinct("_id")),
        "aggregate": [row["total"] for row in coll.aggregate([{"$group": {"_id": None, "total": {"$sum": 1}}}])],
    }


def test_reads_during_another_sessions_transaction_answer_at_once_from_committed_data(
    client: MongoClient[Document], coll: Collection[Document]
) -> None:
    before = reads(coll)
    with client.start_session() as session:
        session.start_transaction()
        coll.insert_one({"_id": "new", "owner": "r1", "n": 5}, session=session)
        coll.update_one({"_id": "c0"}, {"$set": {"owner": "r2"}}, session=session)
        started = time.monotonic()
        during = reads(coll)
        waited = time.monotonic() - started
        inside = sorted(d["_id"] for d in coll.find({"owner": "r1"}, session=session))
        session.commit_transaction()
    assert waited < 2  # without the patch each read waits for the transaction (up to a minute)
    assert during == before
    assert inside == ["c1", "c2", "c3", "c4", "new"]  # the transaction reads its own writes
    after = reads(coll)
    assert after["find"] == ["c1", "c2", "c3", "c4", "new"] and after["count"] == 6


def test_each_commit_is_seen_by_the_next_read(client: MongoClient[Document], coll: Collection[Document]) -> None:
    for n in range(30):
        with client.start_session() as session:
            session.start_transaction()
            coll.update_one({"_id": "c1"}, {"$set": {"n": 100 + n}}, session=session)
            assert (coll.find_one({"_id": "c1"}) or {})["n"] == (99 + n if n else 1)
            session.commit_transaction()
        assert (coll.find_one({"_id": "c1"}) or {})["n"] == 100 + n
        assert [d["n"] for d in coll.find({"_id": {"$in": ["c1"]}})] == [100 + n]


def test_a_write_outside_a_transaction_still_waits_for_it(
    client: MongoClient[Document], coll: Collection[Document]
) -> None:
    with client.start_session() as session:
        session.start_transaction()
        coll.update_one({"_id": "c2"}, {"$set": {"n": "in transaction"}}, session=session)
        writer = threading.Thread(target=lambda: coll.update_one({"_id": "c2"}, {"$inc": {"seen": 1}}))
        writer.start()
        time.sleep(0.3)
        assert writer.is_alive()  # waiting for the transaction, as on MongoDB
        session.commit_transaction()
        writer.join(timeout=30)
    assert coll.find_one({"_id": "c2"}) == {"_id": "c2", "owner": "r1", "n": "in transaction", "seen": 1}


async def test_upstream_still_refuses_a_read_during_another_sessions_transaction(tmp_path: Path) -> None:
    """The behaviour the patch works around, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    async with InProcessClient(SQLiteEngine(str(tmp_path / "upstream.sqlite3"))) as upstream:
        things = upstream.db.things
        await things.insert_one({"_id": "seed"})
        session = upstream.start_session()
        session.start_transaction()
        await things.insert_one({"_id": "in-transaction"}, session=session)
        with pytest.raises(Exception, match="active transaction bound to another session"):
            await things.find_one({"_id": "seed"})
        session.abort_transaction()


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_readers.apply() is False


def test_a_closed_dedicated_reader_is_kept_with_its_snapshot_ended(tmp_path: Path) -> None:
    path = tmp_path / "kept.sqlite3"
    with closing(sqlite3.connect(path)) as writer:
        writer.execute("PRAGMA journal_mode=WAL")  # as the engine opens its file
        writer.execute("CREATE TABLE t (n)")
        writer.commit()
        readers = [sqlite3.connect(path) for _ in range(embedded_readers.KEPT + 1)]
        try:
            for reader in readers:
                reader.execute("BEGIN")
                assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
            writer.execute("INSERT INTO t VALUES (1)")
            writer.commit()
            kept: list[sqlite3.Connection] = []
            assert [embedded_readers.keep(r, kept) for r in readers] == [True] * embedded_readers.KEPT + [False]
            assert kept == readers[:-1] and not any(r.in_transaction for r in readers)
            assert kept[0].execute("SELECT count(*) FROM t").fetchone() == (1,)  # a fresh snapshot: the commit shows
        finally:
            for reader in readers:
                reader.close()


async def test_upstream_connects_anew_for_each_read_of_several_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeping dedicated readers saves, unpatched (this process does not apply it)."""
    opened = []
    create = SQLiteEngine._create_sqlite_connection
    monkeypatch.setattr(SQLiteEngine, "_create_sqlite_connection", lambda engine: opened.append(1) or create(engine))
    async with InProcessClient(SQLiteEngine(str(tmp_path / "upstream.sqlite3"))) as upstream:
        await upstream.db.things.insert_many([{"_id": n} for n in range(3)])
        before = len(opened)
        for _ in range(3):
            assert len(await upstream.db.things.find({}).to_list()) == 3
    assert len(opened) - before == 3


@pytest.mark.parametrize(
    ("command", "body", "read"),
    [
        ("find", {}, True),
        ("aggregate", {"pipeline": [{"$match": {}}]}, True),
        ("aggregate", {"pipeline": [{"$match": {}}, {"$out": "copy"}]}, False),
        ("aggregate", {"pipeline": [{"$merge": {"into": "copy"}}]}, False),
        ("find", {"autocommit": False, "txnNumber": 1}, False),
        ("update", {}, False),
        ("findAndModify", {}, False),
    ],
)
def test_which_commands_read(command: str, body: dict[str, Any], read: bool) -> None:
    assert embedded_readers.is_read(command, body) is read
