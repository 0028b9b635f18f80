"""service.store.embedded_partial_indexes: on the embedded SQLite store each collection's physical
indexes cover only its own rows, and queries (hinted ones too) use them and answer as before."""

from __future__ import annotations

import inspect
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.engines import SQLiteEngine
from pymongo import ASCENDING, MongoClient
from pymongo.errors import OperationFailure

from service.store import embedded_partial_indexes
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION


def physical_indexes(path: Path) -> dict[tuple[str, str], str]:
    """(collection, index name) -> the SQL of its physical index on the shared documents table."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT i.coll_name, i.name, m.sql FROM indexes AS i JOIN sqlite_master AS m ON m.name = i.physical_name"
        )
        return {(coll, name): sql for coll, name, sql in rows}


def physical_name(path: Path, coll_name: str, name: str) -> str:
    with closing(sqlite3.connect(path)) as conn:
        [(physical,)] = conn.execute(
            "SELECT physical_name FROM indexes WHERE coll_name = ? AND name = ?", (coll_name, name)
        )
        return str(physical)


def plan(path: Path, coll_name: str, field: str, value: Any) -> str:
    """SQLite's plan for an equality on ``field``, the namespace bound as mongoeco binds it."""
    sql = (
        "EXPLAIN QUERY PLAN SELECT document FROM documents WHERE db_name = ? AND coll_name = ? "
        f"AND COALESCE(json_extract(document, '$.{field}.\"$mongoeco\".type'), '') = '' "
        f"AND COALESCE(json_extract(document, '$.{field}.\"$mongoeco\".value'), "
        f"json_extract(document, '$.{field}')) = ?"
    )
    with closing(sqlite3.connect(path)) as conn:
        return " ".join(row[3] for row in conn.execute(sql, ("db", coll_name, value)))


def test_each_collections_indexes_cover_only_its_rows(tmp_path: Path) -> None:
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient[dict[str, Any]](embedded.uri) as client:
            client.db.receipts.create_index([("deviceId", ASCENDING), ("at", ASCENDING)])
            client.db.history.create_index("deviceId")
            client.db.receipts.insert_many([{"_id": f"r{n}", "deviceId": f"d{n % 2}", "at": n} for n in range(6)])
            client.db.history.insert_many([{"_id": f"h{n}", "deviceId": "d1"} for n in range(3)])
            client.db.history.update_one({"_id": "h0"}, {"$set": {"deviceId": "d0"}})
            receipts = client.db.receipts.find({"deviceId": "d1", "at": {"$gte": 2}}).sort("at", ASCENDING)
            assert [r["_id"] for r in receipts] == ["r3", "r5"]
            assert [h["_id"] for h in client.db.history.find({"deviceId": "d0"})] == ["h0"]
            hinted = client.db.history.find({"deviceId": "d1"}).hint("deviceId_1").sort("_id", ASCENDING)
            assert [h["_id"] for h in hinted] == ["h1", "h2"]
            with pytest.raises(OperationFailure, match="hint"):
                list(client.db.history.find({}).hint("no_such_index"))
            client.db.command("renameCollection", "db.receipts", to="db.acks")  # mongoeco: from the database
            assert [r["_id"] for r in client.db.acks.find({"deviceId": "d0"}).sort("at", ASCENDING)] == [
                "r0",
                "r2",
                "r4",
            ]
    finally:
        embedded.stop()
    path = tmp_path / "fieldsync.sqlite3"
    indexes = physical_indexes(path)
    assert indexes[("history", "deviceId_1")].endswith("WHERE db_name = 'db' AND coll_name = 'history'")
    assert indexes[("acks", "deviceId_1_at_1")].endswith("WHERE db_name = 'db' AND coll_name = 'acks'")
    by_device = physical_name(path, "history", "deviceId_1")
    assert f"USING INDEX {by_device} (db_name=? AND coll_name=?" in plan(path, "history", "deviceId", "d1")
    with closing(sqlite3.connect(path)) as conn:
        [(entries,)] = conn.execute(
            f"SELECT count(*) FROM documents INDEXED BY {by_device} WHERE db_name = 'db' AND coll_name = 'history'"
        )
    assert entries == 3  # the receipts are not in it


def scalar_index_sql(path: Path, coll_name: str, name: str) -> str:
    """The SQL of the index on scalar_index_entries that serves index ``name`` of ``coll_name``."""
    with closing(sqlite3.connect(path)) as conn:
        [(sql,)] = conn.execute(
            "SELECT m.sql FROM indexes AS i JOIN sqlite_master AS m ON m.name = i.scalar_physical_name "
            "WHERE i.coll_name = ? AND i.name = ?",
            (coll_name, name),
        )
        return str(sql)


def test_each_single_field_index_holds_only_its_own_entries(tmp_path: Path) -> None:
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient[dict[str, Any]](embedded.uri) as client:
            client.db.history.create_index("seq")
            client.db.syncs.create_index("receivedAt")  # a collection not written yet
            client.db.history.insert_many([{"_id": f"h{n}", "seq": n} for n in range(5)])
            client.db.history.update_one({"_id": "h0"}, {"$set": {"seq": 9}})
            later = client.db.history.find({"seq": {"$gte": 3}}).sort("seq", ASCENDING)  # read through the entries
            assert [h["_id"] for h in later] == ["h3", "h4", "h0"]
            assert [h["_id"] for h in client.db.history.find({"seq": 2}).hint("seq_1")] == ["h2"]
            assert list(client.db.syncs.find({"receivedAt": {"$gte": 0}})) == []
    finally:
        embedded.stop()
    path = tmp_path / "fieldsync.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        [(history,)] = conn.execute("SELECT collection_id FROM collections WHERE coll_name = 'history'")
    assert scalar_index_sql(path, "history", "seq_1").endswith(
        f"WHERE collection_id = {history} AND index_name = 'seq_1'"
    )
    assert scalar_index_sql(path, "syncs", "receivedAt_1").endswith("WHERE collection_id IS NULL")  # no entries yet


async def test_a_file_with_full_indexes_gets_partial_ones_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "fieldsync.sqlite3"
    async with InProcessClient(SQLiteEngine(str(path))) as upstream:  # this process does not apply the patch
        await upstream.db.history.create_index("deviceId")
        await upstream.db.history.insert_many([{"_id": f"h{n}", "deviceId": f"d{n}"} for n in range(3)])
    assert " WHERE " not in physical_indexes(path)[("history", "deviceId_1")]  # upstream: the whole table
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient[dict[str, Any]](embedded.uri) as client:
            assert [h["_id"] for h in client.db.history.find({"deviceId": "d2"})] == ["h2"]
    finally:
        embedded.stop()
    assert physical_indexes(path)[("history", "deviceId_1")].endswith("AND coll_name = 'history'")


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_partial_indexes.apply() is False


def test_a_collection_named_with_a_quote_is_planned_on_its_own_index(tmp_path: Path) -> None:
    """The namespace is written into the SQL (indexes and planned reads) as a quoted literal."""
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient[dict[str, Any]](embedded.uri) as client:
            quoted = client["it's"]["rep's visits"]
            quoted.create_index([("owner", ASCENDING), ("seq", ASCENDING)])
            quoted.insert_many([{"_id": f"v{n}", "owner": f"r{n % 2}", "seq": n} for n in range(6)])
            found = quoted.find({"owner": "r1", "seq": {"$gte": 2}}).sort("seq", ASCENDING)
            assert [v["_id"] for v in found] == ["v3", "v5"]
            assert [v["_id"] for v in quoted.find({"_id": {"$in": ["v0", "v4"]}})] == ["v0", "v4"]
    finally:
        embedded.stop()
    sql = physical_indexes(tmp_path / "fieldsync.sqlite3")[("rep's visits", "owner_1_seq_1")]
    assert sql.endswith(f"WHERE {embedded_partial_indexes.namespace_sql("it's", "rep's visits")}")
    assert sql.endswith("WHERE db_name = 'it''s' AND coll_name = 'rep''s visits'")


def test_a_rewritten_document_keeps_only_its_current_entries(tmp_path: Path) -> None:
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient[dict[str, Any]](embedded.uri) as client:
            history = client.db.history
            history.create_index("seq")
            history.create_index("deviceId")
            history.insert_many([{"_id": "h0", "seq": 1, "deviceId": "d1"}, {"_id": "h1", "seq": 2, "deviceId": "d1"}])
            history.replace_one({"_id": "h0"}, {"seq": 5, "deviceId": "d2"})
            history.update_one({"_id": "h1"}, {"$set": {"seq": 6}})
            assert [h["_id"] for h in history.find({"seq": {"$gte": 1}}).sort("seq", ASCENDING)] == ["h0", "h1"]
            assert list(history.find({"deviceId": "d1"}, {"_id": 1})) == [{"_id": "h1"}]
            history.delete_one({"_id": "h1"})
    finally:
        embedded.stop()
    with closing(sqlite3.connect(tmp_path / "fieldsync.sqlite3")) as conn:
        entries = conn.execute(
            "SELECT e.index_name, e.element_key FROM scalar_index_entries AS e"
            " JOIN collections AS c ON c.collection_id = e.collection_id WHERE c.coll_name = 'history' ORDER BY 1"
        ).fetchall()
    values = [(name, key.rstrip("!").rpartition("|")[2]) for name, key in entries]
    assert values == [("deviceId_1", "d2"), ("seq_1", "5")]  # h0's current values; h1's entries went with it


def test_upstream_binds_the_collection_id_of_a_documents_entries() -> None:
    """What the patch replaces (sqlite.py:4069): the id a parameter, so the statement was prepared at each run."""
    source = inspect.getsource(SQLiteEngine._delete_scalar_entries_for_storage_key)
    assert "DELETE FROM scalar_index_entries\n            WHERE collection_id = ? AND storage_key = ?" in source
