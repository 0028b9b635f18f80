"""service.store.embedded_multikey_entries: on the embedded SQLite store, a write finds its
document's multikey entries by index, not by reading all of its collection's."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.engines import SQLiteEngine
from pymongo import MongoClient

from service.store import embedded_multikey_entries
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION

# What the engine runs before each write of a document (mongoeco 4.11.0, sqlite.py:4061).
DELETE = "DELETE FROM multikey_entries WHERE collection_id = ? AND storage_key = ?"


def delete_plan(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {DELETE}", (1, "k")))


def entries(path: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute("SELECT storage_key, element_key FROM multikey_entries"))


def test_the_patched_store_finds_a_documents_multikey_entries_by_index(tmp_path: Path) -> None:
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient[dict[str, Any]](embedded.uri) as client:
            records = client.db.records
            records.create_index("refs")
            records.insert_many([{"_id": f"r{n}", "refs": [f"o{n}", "o9"]} for n in range(3)])
            records.update_one({"_id": "r1"}, {"$set": {"refs": ["o7"]}})
            records.delete_one({"_id": "r2"})
            assert [r["_id"] for r in records.find({"refs": "o9"})] == ["r0"]
            assert [r["_id"] for r in records.find({"refs": "o7"})] == ["r1"]
    finally:
        embedded.stop()
    path = tmp_path / "fieldsync.sqlite3"
    plan = delete_plan(path)
    assert f"USING INDEX {embedded_multikey_entries.INDEX} (collection_id=? AND storage_key=?)" in plan
    assert len(entries(path)) == 3  # r0: o0 and o9; r1: o7


async def test_upstream_reads_every_multikey_entry_of_the_collection(tmp_path: Path) -> None:
    """What the patch removes, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    path = tmp_path / "upstream.sqlite3"
    async with InProcessClient(SQLiteEngine(str(path))) as upstream:
        await upstream.db.records.create_index("refs")
        await upstream.db.records.insert_one({"_id": "r0", "refs": ["o0"]})
    plan = delete_plan(path)
    assert "(collection_id=?)" in plan and "storage_key=?" not in plan, plan


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_multikey_entries.apply() is False
