"""service.store.embedded_document_reads: the SQLite engine reads documents as before, without asking
``inspect.signature`` of its codec for each one."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path

import mongoeco
import pytest
from bson import Int64
from mongoeco.engines import SQLiteEngine
from pymongo import MongoClient

from service.store import embedded_document_reads
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION


def test_documents_read_back_as_written_through_the_patched_store(tmp_path: Path) -> None:
    stored = {
        "_id": "r1",
        "at": datetime(2026, 11, 20, 1, 2, 3, 456000, tzinfo=UTC),
        "big": Int64(2**40),
        "blob": b"\x00\x01",
        "nested": {"list": [1, 2.5, "x", None, {"deep": True}]},
    }
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient(embedded.uri, tz_aware=True) as client:
            client.db.things.insert_one(stored)
            assert client.db.things.find_one({"_id": "r1"}) == stored
    finally:
        embedded.stop()


def test_upstream_asks_the_codecs_signature_for_every_document_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the patch removes, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    engine = SQLiteEngine(str(tmp_path / "upstream.sqlite3"))
    asked: list[object] = []
    signature = inspect.signature

    def counted(target: object) -> inspect.Signature:
        asked.append(target)
        return signature(target)  # type: ignore[arg-type]

    monkeypatch.setattr(inspect, "signature", counted)
    for n in range(3):
        engine._decode_codec_payload({"_id": f"d{n}"}, preserve_bson_wrappers=False)
    assert len(asked) == 3


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_document_reads.apply() is False
