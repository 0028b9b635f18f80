"""service.store.embedded_catalog_checks: on the embedded SQLite store a transaction checks once
whether another connection changed the file (the catalog check before each index look-up),
and a change another connection commits is still noticed by the next transaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mongoeco
import pytest

from service.store import embedded_catalog_checks
from service.store.embedded_pin import PINNED_VERSION

ROOT = Path(__file__).resolve().parents[2]

# Two transactions of five inserts and five reads on an in-process engine; prints how many
# times the connection asked for the file's data version in each, then whether a write by
# another connection between transactions still cleared the connection's cached catalogs.
_TRANSACTIONS = """
import asyncio, sqlite3, sys, tempfile
from service.store import embedded_catalog_checks, embedded_patches
embedded_patches.apply()
if sys.argv[1] == "patched":
    assert embedded_catalog_checks.apply()
from mongoeco import AsyncMongoClient
from mongoeco.engines import SQLiteEngine

async def main():
    path = tempfile.mkdtemp() + "/store.sqlite3"
    engine = SQLiteEngine(path)
    async with AsyncMongoClient(engine) as client:
        docs = client.db.docs
        await docs.create_index([("a", 1), ("b", 1)], name="a_b")
        await docs.insert_one({"_id": "first", "a": "x", "b": -1})
        conn = engine._require_connection()
        statements = []
        conn.set_trace_callback(statements.append)
        for round in range(2):
            statements.clear()
            async with client.start_session() as session:
                session.start_transaction()
                for n in range(5):
                    await docs.insert_one({"_id": f"{round}-{n}", "a": "x", "b": n}, session=session)
                    await docs.find_one({"a": "x", "b": n}, session=session)
                session.commit_transaction()
            print(sum("data_version" in s for s in statements))
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE IF NOT EXISTS elsewhere (x)")
        conn.index_catalogs[("db", "sentinel")] = (0, [])
        async with client.start_session() as session:
            session.start_transaction()
            await docs.insert_one({"_id": "after", "a": "y", "b": 0}, session=session)
            session.commit_transaction()
        print(("db", "sentinel") not in conn.index_catalogs)
        print(await docs.count_documents({}))

asyncio.run(main())
"""


def run(mode: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _TRANSACTIONS, mode], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_transaction_checks_the_file_once_and_notices_another_connections_commit() -> None:
    checks_first, checks_second, noticed, stored = run("patched")
    assert (checks_first, checks_second) == ("1", "1")
    assert noticed == "True"
    assert stored == "12"


def test_upstream_checks_before_every_index_look_up() -> None:
    """What the patch removes, unpatched: the engine asks for the data version many times a transaction."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    checks_first, checks_second, noticed, stored = run("upstream")
    assert int(checks_first) > 10 and int(checks_second) > 10
    assert noticed == "True"
    assert stored == "12"


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_catalog_checks.apply() is False
