"""service.store.embedded_insert_batch: a batch insert of new plain documents leaves the SQLite file
holding the same rows and entries as mongoeco's own path, and any other batch is accepted or refused
as before."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.engines import SQLiteEngine
from mongoeco.errors import BulkWriteError, PyMongoError

from service.store import embedded_insert_batch
from service.store.embedded_pin import PINNED_VERSION

TABLES = ("documents", "scalar_index_entries", "multikey_entries", "ttl_index_entries")
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def things(start: int, count: int) -> list[dict[str, Any]]:
    """Plain documents as a push writes them: a number range, an owner, arrays, dates, missing fields."""
    return [
        {
            "_id": f"t{n}",
            "seq": n,
            "owner": f"rep-{n % 3}" if n % 5 else None,
            "tags": [f"o{n % 4}", f"o{(n + 1) % 4}"] if n % 2 else [],
            "at": T0 + timedelta(seconds=n),
            "fields": {"status": "DONE", "n": n * 1.5},
            **({"extra": True} if n % 7 == 0 else {}),
        }
        for n in range(start, start + count)
    ]


async def run(path: Path) -> list[Any]:
    """The same writes each time; what each insert answered (or raised)."""
    answers: list[Any] = []
    async with InProcessClient(SQLiteEngine(str(path))) as client:
        collection = client.db.things
        await collection.create_index("seq")
        await collection.create_index([("owner", 1), ("seq", 1)])
        await collection.create_index("tags")
        await collection.create_index("at", expire_after_seconds=86_400 * 365)
        answers.append((await collection.insert_many(things(0, 20))).inserted_ids)
        async with client.start_session() as session:
            session.start_transaction()
            answers.append((await collection.insert_many(things(20, 20), session=session)).inserted_ids)
            session.commit_transaction()
        for batch, ordered in (
            (things(40, 3) + things(5, 1) + things(43, 2), True),  # an _id already stored: refused at it
            (things(50, 2) + things(50, 1) + things(52, 1), False),  # one repeated in the batch
            ([{"_id": 7, "seq": 1}, {"_id": "n", "seq": 2}], True),  # a number _id
            ([{"_id": "two", "owner": ["a", "b"], "seq": [1, 2]}, {"_id": "after", "seq": 3}], True),  # two arrays
        ):
            try:
                answers.append((await collection.insert_many(batch, ordered=ordered)).inserted_ids)
            except (BulkWriteError, PyMongoError) as error:
                details = getattr(error, "details", None) or {}
                answers.append(
                    (
                        type(error).__name__,
                        details.get("nInserted"),
                        [e["index"] for e in details.get("writeErrors", [])],
                    )
                )
        answers.append(sorted([d["_id"] async for d in collection.find({"tags": "o1"})], key=str))
        answers.append([d["_id"] async for d in collection.find({"owner": "rep-1"}).sort("seq", 1)])
    return answers


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(path)) as conn:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}"), key=repr) for table in TABLES}


async def test_the_patched_batch_writes_what_upstream_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    # As in the store: no change delivery (embedded_outbox), which the patch requires, for both runs.
    monkeypatch.setattr(
        SQLiteEngine, "capabilities", dataclasses.replace(SQLiteEngine.capabilities, change_delivery="none")
    )
    upstream_answers = await run(tmp_path / "upstream.sqlite3")
    upstream = SQLiteEngine._insert_documents_sync
    taken: list[int] = []  # the batches the patch left to upstream

    def counted(self: Any, db_name: str, coll_name: str, documents: list[Any], *args: Any, **kwargs: Any) -> Any:
        taken.append(len(documents))
        return upstream(self, db_name, coll_name, documents, *args, **kwargs)

    monkeypatch.setattr(SQLiteEngine, "_insert_documents_sync", counted)  # put back after the test
    monkeypatch.setattr(embedded_insert_batch, "_ORIGINALS", {})
    assert embedded_insert_batch.apply()
    patched_answers = await run(tmp_path / "patched.sqlite3")
    assert patched_answers == upstream_answers
    assert patched_answers[:2] == [[f"t{n}" for n in range(20)], [f"t{n}" for n in range(20, 40)]]
    assert rows(tmp_path / "patched.sqlite3") == rows(tmp_path / "upstream.sqlite3")
    assert len(taken) >= 4 and 20 not in taken  # the plain batches were written by the patch, the others were not


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    monkeypatch.setattr(embedded_insert_batch, "_ORIGINALS", {})
    assert embedded_insert_batch.apply() is False
