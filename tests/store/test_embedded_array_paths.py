"""service.store.embedded_array_paths: the SQLite engine finds a document's arrays on an index's
fields as before, a top-level field's with one look."""

from __future__ import annotations

from pathlib import Path

import mongoeco
import pytest
from bson import DBRef
from mongoeco.engines import SQLiteEngine
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from service.store import embedded_array_paths
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION

DOCUMENTS = [
    {"a": [1, 2], "b": 1},
    {"a": [], "b": [[1]]},
    {"a": {"x": [1]}, "b": None},
    {"a": DBRef("c", 1), "b": "text"},
    {"a": [{"x": 1}, {"x": [2]}]},
    {},
]
FIELDS = ["a", "b", "0", "a.x", "a.0", "a.x.0"]


def test_a_compound_index_still_refuses_a_document_with_two_arrays_through_the_patched_store(tmp_path: Path) -> None:
    embedded = start_embedded_store(tmp_path)
    try:
        with MongoClient(embedded.uri) as client:
            things = client.db.things
            things.create_index([("owner", 1), ("tags", 1), ("seq", 1)])
            things.insert_one({"_id": "one array", "owner": "o", "tags": ["x", "y"], "seq": 1})
            with pytest.raises(OperationFailure, match="more than one array field"):
                things.insert_one({"_id": "two arrays", "owner": ["o", "p"], "tags": ["x"], "seq": 2})
            assert [d["_id"] for d in things.find({"owner": "o", "tags": "y"})] == ["one array"]
    finally:
        embedded.stop()


def test_the_patched_walk_finds_what_upstreams_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = SQLiteEngine._array_paths_for_index_field
    monkeypatch.setattr(SQLiteEngine, "_array_paths_for_index_field", upstream)  # put back after the test
    monkeypatch.setattr(embedded_array_paths, "_ORIGINALS", {})
    assert embedded_array_paths.apply()
    patched = SQLiteEngine._array_paths_for_index_field
    assert patched is not upstream
    for document in DOCUMENTS:
        for field in FIELDS:
            assert patched(document, field) == upstream(document, field), (document, field)


def test_upstream_finds_a_top_level_field_itself_exactly_when_it_holds_a_list() -> None:
    """What the patch relies on, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    for document in DOCUMENTS:
        for field in ("a", "b", "0"):
            expected = {field} if isinstance(document.get(field), list) else set()
            assert SQLiteEngine._array_paths_for_index_field(document, field) == expected


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_array_paths.apply() is False
