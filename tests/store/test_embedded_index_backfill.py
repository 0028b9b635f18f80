"""service.store.embedded_index_backfill: opening an embedded SQLite store file rebuilds the
index entries of its documents once per mongoeco version, not at every start."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.engines import SQLiteEngine
from pymongo import MongoClient

from service.store import embedded_index_backfill
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION


def started(data_dir: Path) -> Iterator[MongoClient[dict[str, Any]]]:
    embedded = start_embedded_store(data_dir)
    try:
        with MongoClient(embedded.uri) as client:
            yield client
    finally:
        embedded.stop()


def entries(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM scalar_index_entries").fetchone()[0])


def test_a_reopened_store_keeps_its_index_entries_and_answers_from_them(tmp_path: Path) -> None:
    path = tmp_path / "fieldsync.sqlite3"
    for client in started(tmp_path):
        visits = client.db.visits
        visits.create_index("owner")
        visits.insert_many([{"_id": f"v{n}", "owner": f"rep{n % 3}"} for n in range(30)])
    written = entries(path)
    assert written >= 30
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DELETE FROM scalar_index_entries WHERE storage_key = (SELECT min(storage_key) FROM documents)")
        conn.commit()  # an entry lost behind the engine's back stays lost: the open no longer rebuilds them all
    for client in started(tmp_path):
        visits = client.db.visits
        assert {v["_id"] for v in visits.find({"owner": "rep1"})} == {f"v{n}" for n in range(1, 30, 3)}
        visits.insert_one({"_id": "v30", "owner": "rep0"})  # a write keeps its own entries
        visits.update_one({"_id": "v4"}, {"$set": {"status": "DONE"}})
        visits.create_index("status")  # a new index builds its entries over the stored documents
        assert [v["_id"] for v in visits.find({"status": "DONE"})] == ["v4"]
    assert entries(path) == written - 1 + 1 + 1  # the lost one stays lost; v30's owner; v4's status
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute(f"SELECT done FROM {embedded_index_backfill.TABLE}").fetchall() == [
            (embedded_index_backfill.DONE,)
        ]


async def test_upstream_rebuilds_every_entry_each_time_it_opens_the_file(tmp_path: Path) -> None:
    """What the patch removes, unpatched (this process does not apply it): the lost entry comes back."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    path = tmp_path / "upstream.sqlite3"
    async with InProcessClient(SQLiteEngine(str(path))) as upstream:
        await upstream.db.visits.create_index("owner")
        await upstream.db.visits.insert_many([{"_id": f"v{n}", "owner": "rep"} for n in range(5)])
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("DELETE FROM scalar_index_entries WHERE rowid = (SELECT min(rowid) FROM scalar_index_entries)")
        conn.commit()
    async with InProcessClient(SQLiteEngine(str(path))) as upstream:
        assert len(await upstream.db.visits.find({"owner": "rep"}).to_list()) == 5
    assert entries(path) == 5


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_index_backfill.apply() is False
