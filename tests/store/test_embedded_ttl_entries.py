"""service.store.embedded_ttl_entries: on the embedded SQLite store, a write to a collection with
a TTL index finds the document's TTL entries by index, not by reading all of the collection's."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import mongoeco
import pytest
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.engines import SQLiteEngine
from pymongo import MongoClient

from service.store import embedded_ttl_entries
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION

# What the engine runs before each write of a document (mongoeco 4.11.0, sqlite.py:4088 and 4118).
DELETE = "DELETE FROM ttl_index_entries WHERE collection_id = ? AND storage_key = ?"


def delete_plan(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {DELETE}", (1, "k")))


def test_the_patched_store_finds_a_documents_ttl_entries_by_index(tmp_path: Path) -> None:
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient(embedded.uri, tz_aware=True) as client:
            events = client.db.events
            events.create_index("at", expireAfterSeconds=3600)
            now = datetime.now(UTC)
            events.insert_many([{"_id": f"e{n}", "at": now} for n in range(3)])
            events.update_one({"_id": "e1"}, {"$set": {"at": now}})
            events.delete_one({"_id": "e2"})
            assert [e["_id"] for e in events.find().sort("_id")] == ["e0", "e1"]
    finally:
        embedded.stop()
    path = tmp_path / "fieldsync.sqlite3"
    assert f"USING COVERING INDEX {embedded_ttl_entries.INDEX} (collection_id=? AND storage_key=?)" in delete_plan(path)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM ttl_index_entries").fetchone()[0] == 2  # e0, e1


async def test_upstream_reads_every_ttl_entry_of_the_collection(tmp_path: Path) -> None:
    """What the patch removes, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    path = tmp_path / "upstream.sqlite3"
    async with InProcessClient(SQLiteEngine(str(path))) as upstream:
        await upstream.db.events.create_index("at", expire_after_seconds=3600)
        await upstream.db.events.insert_one({"_id": "e0", "at": datetime.now(UTC)})
    plan = delete_plan(path)
    assert "(collection_id=?)" in plan and "storage_key=?" not in plan, plan


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_ttl_entries.apply() is False
