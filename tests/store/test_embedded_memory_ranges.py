"""service.store.embedded_memory_ranges: on the embedded memory engine, ranges and sorts read
through an ordered index and find exactly what a scan finds (the child runs the patch; this
process does not); and service.store.number_runs, the ordered tree it keeps."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import mongoeco
import pytest
from bson.int64 import Int64
from hypothesis import given
from hypothesis import strategies as st
from mongoeco import AsyncMongoClient as InProcessClient
from mongoeco.compat import MONGODB_DIALECT_70
from mongoeco.core.query_plan import compile_filter
from mongoeco.engines import MemoryEngine
from pymongo import MongoClient
from pymongo.collection import Collection

from service.store import embedded_memory_ranges, number_runs
from service.store.embedded import EmbeddedStore
from service.store.embedded_pin import PINNED_VERSION

Document = dict[str, Any]
INDEXES = [
    ([("seq", 1)], "seq"),
    ([("rep", 1), ("seq", 1)], "rep_seq"),
    ([("device", 1), ("status", 1)], "device_status"),
    ([("files_id", 1), ("n", 1)], "files_n"),
    ([("reps", 1)], "reps"),
]
# (filter, sort, skip, limit): each read both ways; a sorted read's order is compared too
READS: list[tuple[Document, list[tuple[str, int]] | None, int, int]] = [
    ({"seq": {"$gt": 40}}, [("seq", 1)], 0, 10),
    ({"seq": {"$gte": 3, "$lt": 9}}, [("seq", 1)], 2, 0),
    ({"seq": {"$gt": 10, "$lte": 12.5}}, None, 0, 0),
    ({"seq": {"$lt": 2}}, [("seq", 1)], 0, 0),
    ({"rep": "r1", "seq": {"$gt": 5}}, [("seq", 1)], 0, 3),
    ({"rep": "r1", "seq": {"$gt": 5}}, None, 0, 0),
    ({"rep": "r2", "seq": {"$gt": 5}, "status": "OPEN"}, [("seq", 1)], 0, 2),
    ({"rep": {"$in": ["r1", "r2"]}, "seq": {"$gt": 30}}, [("seq", 1)], 0, 0),
    ({"device": "d1", "status": "OPEN"}, None, 0, 0),
    ({"device": {"$in": ["d1", "d2"]}, "status": "DONE"}, [("seq", 1)], 0, 0),
    ({"$or": [{"device": "d1", "status": "DONE"}, {"_id": {"$in": ["e3", "e4", "nope"]}}]}, None, 0, 0),
    ({"files_id": "f1"}, [("n", 1)], 0, 0),
    ({"files_id": "f2"}, [("n", 1)], 1, 2),
    ({"reps": "r1", "seq": {"$gt": 20}}, None, 0, 0),
    ({"seq": {"$gt": 40}}, [("seq", -1)], 0, 4),
]


def documents() -> list[Document]:
    rows: list[Document] = [
        {
            "_id": f"e{n}",
            "seq": n,
            "rep": f"r{n % 3}",
            "reps": [f"r{n % 3}", f"r{(n + 1) % 3}"],
            "device": f"d{n % 4}",
            "status": "OPEN" if n % 2 else "DONE",
            "files_id": f"f{n % 3}",
            "n": n // 3,
        }
        for n in range(60)
    ]
    # Numbers of every kind compare by value; other types never match a numeric range. No two
    # documents hold the same number: MongoDB gives equal sort keys in no set order.
    rows += [
        {"_id": "float", "seq": 12.5, "rep": "r1", "files_id": "f9", "n": 0},
        {"_id": "int64", "seq": Int64(62), "rep": "r1", "device": "d1", "status": "OPEN"},
        {"_id": "text", "seq": "7", "rep": "r1", "files_id": "f1", "n": "2"},
        {"_id": "nan", "seq": math.nan, "rep": "r1"},
        {"_id": "null", "seq": None, "rep": "r1", "files_id": "f2"},
        {"_id": "missing", "rep": "r1", "device": "d1", "status": "OPEN"},
        {"_id": "no-rep", "seq": 63},
    ]
    return rows


@pytest.fixture
def client(memory_store: EmbeddedStore) -> Iterator[MongoClient[Document]]:
    with MongoClient[Document](memory_store.uri) as mongo:
        yield mongo


def ids(collection: Collection[Document], read: tuple[Document, Any, int, int]) -> list[str]:
    found, sort, skip, limit = read
    cursor = collection.find(found, sort=sort, skip=skip, limit=limit)
    names = [str(document["_id"]) for document in cursor]
    return names if sort else sorted(names)


def assert_same_reads(indexed: Collection[Document], plain: Collection[Document]) -> None:
    for read in READS:
        assert ids(indexed, read) == ids(plain, read), read


def indexed_and_plain(client: MongoClient[Document], request: pytest.FixtureRequest) -> tuple[Collection, Collection]:
    """A collection with the indexes and one without, holding the same documents."""
    db = client[request.node.name[:40]]
    indexed, plain = db.indexed, db.plain
    for keys, name in INDEXES:
        indexed.create_index(keys, name=name)
    for collection in (indexed, plain):
        collection.insert_many(documents())
    return indexed, plain


def test_indexed_reads_find_what_a_scan_finds_through_writes(request: pytest.FixtureRequest, client) -> None:
    indexed, plain = indexed_and_plain(client, request)
    assert_same_reads(indexed, plain)
    for collection in (indexed, plain):
        collection.update_many({"seq": {"$gte": 50, "$lt": 55}}, {"$inc": {"seq": -46.5}})
        collection.delete_many({"seq": {"$gte": 20, "$lt": 25}})
        collection.replace_one({"_id": "e7"}, {"rep": "r1", "seq": 99, "files_id": "f1", "n": 1})
        with client.start_session() as session, session.start_transaction():
            collection.insert_one({"_id": "in-transaction", "seq": 47, "rep": "r1"}, session=session)
            collection.update_one({"_id": "e45"}, {"$set": {"seq": 1}}, session=session)
        session = client.start_session()
        session.start_transaction()
        collection.insert_one({"_id": "aborted", "seq": 48, "rep": "r1"}, session=session)
        collection.delete_one({"_id": "e46"}, session=session)
        session.abort_transaction()
        session.end_session()
    assert_same_reads(indexed, plain)


def test_an_array_at_an_indexed_field_makes_the_reads_plan_as_upstream(
    request: pytest.FixtureRequest, client: MongoClient[Document]
) -> None:
    """MongoDB sorts an array by its smallest element and matches it by any: the order the index
    keeps does not hold those rules, so that index gives no order any more."""
    indexed, plain = indexed_and_plain(client, request)
    for collection in (indexed, plain):
        collection.find_one({"seq": {"$gt": 1}}, sort=[("seq", 1)])  # the order is kept from here on
        collection.insert_one({"_id": "array", "seq": [1, 50], "rep": "r1"})
    assert_same_reads(indexed, plain)
    assert ids(indexed, ({"seq": {"$gt": 45}}, [("seq", 1)], 0, 1)) == ["array"]


def test_a_read_with_a_limit_stops_there(request: pytest.FixtureRequest, client: MongoClient[Document]) -> None:
    db = client[request.node.name[:40]]
    db.events.create_index([("rep", 1), ("seq", 1)], name="rep_seq")
    db.events.insert_many([{"_id": n, "rep": f"r{n % 2}", "seq": n} for n in range(2_000)])
    read = {"find": "events", "filter": {"rep": "r1", "seq": {"$gt": 1_500}}, "sort": {"seq": 1}, "limit": 5}
    explained = db.command("explain", read, verbosity="queryPlanner")
    assert explained["details"]["candidates"] == {"indexes": ["rep_seq"], "stops_at_limit": True}
    assert [e["_id"] for e in db.events.find(read["filter"], sort=[("seq", 1)], limit=5)] == [
        1501,
        1503,
        1505,
        1507,
        1509,
    ]


async def test_upstream_reads_every_document_for_a_range() -> None:
    """What the patch removes, unpatched (this process does not apply it): the memory engine's
    candidates for ``{seq: {$gt}}`` are the whole collection, though an index on ``seq`` exists."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    engine = MemoryEngine()
    async with InProcessClient(engine) as upstream:
        await upstream.db.events.create_index([("seq", 1)], name="seq")
        await upstream.db.events.insert_many([{"_id": n, "seq": n} for n in range(100)])
        coll = engine._storage["db"]["events"]
        candidates = engine._candidate_items_for_plan_locked(
            coll,
            compile_filter({"seq": {"$gt": 98}}),
            dialect=MONGODB_DIALECT_70,
            indexes=engine._indexes["db"]["events"],
            index_data=engine._index_data["db"]["events"],
            collation=None,
        )
        assert len(candidates) == 100


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_memory_ranges.apply() is False


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=400), st.integers(0, 30), st.integers(0, 30))
def test_a_run_holds_its_entries_in_order(steps: list[tuple[bool, int]], low: int, high: int) -> None:
    run: number_runs.Node | None = None
    held: list[tuple[Decimal, str]] = []
    rng = random.Random(len(steps))
    for n, (add, value) in enumerate(steps):
        if add or not held:
            entry = (Decimal(value), f"k{n}")
            held.append(entry)
            run = number_runs.insert(run, *entry)
        else:
            entry = held.pop(rng.randrange(len(held)))
            run = number_runs.remove(run, *entry)
    assert number_runs.remove(run, Decimal(99), "absent") is run
    in_order = [key for _, key in sorted(held, key=lambda entry: entry[0])]  # stable: equal numbers as added
    assert list(number_runs.keys(run, None, None)) == in_order
    assert list(number_runs.keys(number_runs.build(held), None, None)) == in_order
    for low_inclusive in (True, False):
        for high_inclusive in (True, False):
            bounds = (Decimal(low), low_inclusive), (Decimal(high), high_inclusive)
            expected = [
                key
                for number, key in sorted(held, key=lambda entry: entry[0])
                if (number >= low if low_inclusive else number > low)
                and (number <= high if high_inclusive else number < high)
            ]
            assert list(number_runs.keys(run, *bounds)) == expected
