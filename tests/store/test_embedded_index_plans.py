"""service.store.embedded_index_plans: index plans answer as MongoDB would, arrays,
mixed types and tagged values included, and only on the pinned mongoeco version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection

from service.store import embedded_index_plans
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION

Document = dict[str, Any]


@pytest.fixture(scope="module")
def coll(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collection[Document]]:
    embedded = start_embedded_store(Path(tmp_path_factory.mktemp("plans")))
    client: MongoClient[Document] = MongoClient(embedded.uri)
    try:
        collection = client["plans"]["docs"]
        collection.create_index([("owner", ASCENDING), ("seq", ASCENDING)], name="owner_seq")
        collection.create_index([("seq", ASCENDING)], name="seq")
        collection.insert_many([{"_id": f"d{n}", "owner": f"r{n % 2}", "seq": n, "kind": "a"} for n in range(10)])
        yield collection
    finally:
        client.close()
        embedded.stop()


def ids(documents: list[Document]) -> list[str]:
    return [document["_id"] for document in documents]


def plan(collection: Collection[Document], query: dict[str, Any], **options: Any) -> str:
    cursor = collection.find(query, **options)
    return str(cursor.explain()["details"]["engine_details"])


def test_ranges_sorted_by_the_index_with_a_limit(coll: Collection[Document]) -> None:
    found = coll.find({"owner": "r1", "seq": {"$gt": 2, "$lte": 9}}).sort("seq", ASCENDING).limit(3)
    assert ids(list(found)) == ["d3", "d5", "d7"]
    assert "USING INDEX" in plan(coll, {"owner": "r1", "seq": {"$gt": 2}}, sort=[("seq", 1)], limit=3)
    assert ids(list(coll.find({"_id": {"$in": ["d1", "d4", "nope"]}}))) == ["d1", "d4"]
    either = coll.find({"$or": [{"owner": "r0", "kind": "a", "seq": {"$lt": 3}}, {"_id": {"$in": ["d9"]}}]})
    assert sorted(ids(list(either))) == ["d0", "d2", "d9"]


def test_a_number_range_skips_text_and_a_text_range_skips_numbers(coll: Collection[Document]) -> None:
    coll.insert_many([{"_id": "t1", "owner": "r9", "seq": "7"}, {"_id": "t2", "owner": "r9", "seq": 7.5}])
    try:
        assert ids(list(coll.find({"owner": "r9", "seq": {"$gt": 5}}).sort("seq", 1))) == ["t2"]
        assert ids(list(coll.find({"owner": "r9", "seq": {"$gt": "5"}}).sort("seq", 1))) == ["t1"]
    finally:
        coll.delete_many({"owner": "r9"})


def test_an_equality_sorted_on_the_next_field_reads_the_index_in_order(coll: Collection[Document]) -> None:
    """A GridFS file's chunks: ``{files_id}`` sorted by ``n``."""
    assert ids(list(coll.find({"owner": "r0"}).sort("seq", 1))) == ["d0", "d2", "d4", "d6", "d8"]
    assert "TEMP B-TREE" not in plan(coll, {"owner": "r0"}, sort=[("seq", 1)])
    assert "USING INDEX" in plan(coll, {"owner": "r0"}, sort=[("seq", 1)])


@pytest.mark.parametrize(
    ("odd", "expected"),
    [
        ({"_id": "x", "owner": "r0"}, ["x", "d0", "d2"]),  # no seq: sorts first
        ({"_id": "x", "owner": "r0", "seq": "1"}, ["d0", "d2", "d4"]),  # text sorts after numbers
        ({"_id": "x", "owner": "r0", "seq": datetime(2026, 1, 1, tzinfo=UTC)}, ["d0", "d2", "d4"]),
    ],
)
def test_a_sort_over_values_that_are_not_plain_numbers_falls_back_to_mongoeco(
    coll: Collection[Document], odd: Document, expected: list[str]
) -> None:
    coll.insert_one(odd)
    try:
        assert ids(list(coll.find({"owner": "r0"}).sort("seq", 1)))[:3] == expected
    finally:
        coll.delete_one({"_id": "x"})


@pytest.mark.parametrize(
    ("odd", "expected"),
    [
        ({"_id": "x", "owner": "r1", "seq": [100, 1]}, ["x", "d9"]),  # an element matches; sorts by its least
        ({"_id": "x", "owner": ["r1", "r5"], "seq": 100}, ["d9", "x"]),
        ({"_id": "x", "owner": "r1", "seq": datetime(2026, 1, 1, tzinfo=UTC)}, ["d9"]),  # tagged: another type
    ],
)
def test_an_array_or_tagged_value_under_the_prefix_falls_back_to_mongoeco(
    coll: Collection[Document], odd: Document, expected: list[str]
) -> None:
    coll.insert_one(odd)
    try:
        assert ids(list(coll.find({"owner": "r1", "seq": {"$gt": 8}}).sort("seq", 1))) == expected
    finally:
        coll.delete_one({"_id": "x"})


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check every plan above
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_index_plans.apply() is False


def test_an_equality_on_a_field_holding_arrays_reads_multikey_entries(coll: Collection[Document]) -> None:
    coll.create_index([("tags", ASCENDING)], name="tags")
    coll.insert_many(
        [
            {"_id": "a1", "tags": ["x", "y"], "seq": 1},
            {"_id": "a2", "tags": "x", "seq": 2},
            {"_id": "a3", "tags": ["y"], "seq": 3},
            {"_id": "a4", "tags": [["x"]], "seq": 4},  # an element that is an array: no match
            {"_id": "a5", "seq": 5},
        ]
    )
    try:
        assert sorted(ids(list(coll.find({"tags": "x"})))) == ["a1", "a2"]
        assert sorted(ids(list(coll.find({"tags": "x", "seq": {"$gt": 1}})))) == ["a2"]
        assert "multikey_entries" in plan(coll, {"tags": "x", "seq": {"$gt": 1}})
    finally:
        coll.delete_many({"_id": {"$in": ["a1", "a2", "a3", "a4", "a5"]}})


def test_a_projection_keeping_top_level_fields_is_read_in_sql_and_answers_as_mongodb(
    coll: Collection[Document],
) -> None:
    when = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    kinds = [
        {"refs": ["OUTLET:o1", "PRODUCT:p1"], "flag": True, "none": None, "at": when, "nested": {"a": [1, 2.5]}},
        {"refs": [], "flag": False, "count": 2**40},
        {},  # none of the kept fields
    ]
    coll.insert_many([{"_id": f"p{n}", "owner": "rp", "seq": 100 + n, **kind} for n, kind in enumerate(kinds)])
    try:
        for projection in ({"refs": 1}, {"_id": 0, "refs": 1, "flag": 1}, {"flag": True, "none": 1, "at": 1}):
            projected = list(coll.find({"owner": "rp"}, projection).sort("seq", 1))
            whole = list(coll.find({"owner": "rp"}).sort("seq", 1))
            keep = {field for field, value in projection.items() if value} | (
                {"_id"} if projection.get("_id", 1) else set()
            )
            assert projected == [{k: v for k, v in document.items() if k in keep} for document in whole]
            assert [list(d) for d in projected] == [[k for k in d if k in keep] for d in whole]  # in stored order
        assert "json_each" in plan(coll, {"owner": "rp"}, projection={"refs": 1})
        assert "json_each" not in plan(coll, {"owner": "rp"}, projection={"refs": 0})  # an exclusion: mongoeco's
        assert embedded_index_plans.kept_fields({"a.b": 1}) is None
        assert embedded_index_plans.kept_fields({"_id": 0, "refs": 1}) == ["refs"]
    finally:
        coll.delete_many({"owner": "rp"})
