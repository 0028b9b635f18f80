"""service.store.embedded_wire_values: values cross the embedded store's wire as before, plain ones
without being inspected."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import mongoeco
import pytest
from bson import Binary, Decimal128, Int64, ObjectId, Regex, Timestamp
from mongoeco.wire.bson_bridge import decode_wire_value, encode_wire_value
from pymongo import MongoClient

from service.store import embedded_wire_values
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION

PLAIN_VALUES = ["text", 7, 2**40, 1.5, True, None, datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)]


@pytest.mark.parametrize("memory", [True, False], ids=["memory", "sqlite"])
def test_every_kind_of_value_reads_back_as_written_through_the_patched_store(tmp_path: Path, memory: bool) -> None:
    stored = {
        "_id": ObjectId(),
        "plain": PLAIN_VALUES,
        "converted": {
            "int64": Int64(2**40),
            "decimal": Decimal128(Decimal("1.25")),
            "bytes": b"\x00\x01",
            "binary": Binary(b"\x00\x01", 5),
            "uuid": uuid.UUID(int=1),
            "regex": Regex("^a", re.IGNORECASE),
            "timestamp": Timestamp(1, 2),
        },
        "nested": [{"deep": [1, {"deeper": "x"}]}, [], {}],
    }
    embedded = start_embedded_store(None if memory else tmp_path)
    try:
        with MongoClient(embedded.uri, tz_aware=True, uuidRepresentation="standard") as client:
            client.db.things.insert_one(stored)
            read = client.db.things.find_one({"plain": "text", "nested.deep.deeper": "x"})
            assert read == stored
            assert isinstance(read["plain"][2], int) and isinstance(read["converted"]["int64"], Int64)
    finally:
        embedded.stop()


def test_upstream_walks_return_plain_values_as_they_came() -> None:
    """What the patch relies on, unpatched (this process does not apply it)."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    for walk in (decode_wire_value, encode_wire_value):
        for value in PLAIN_VALUES:
            assert type(value) in embedded_wire_values.PLAIN
            assert walk(value) is value
        document = {"a": PLAIN_VALUES, "b": {"c": "d"}}
        walked = walk(document)
        assert walked == document and type(walked) is dict and type(walked["a"]) is list
    assert type(decode_wire_value(Int64(5))) is not Int64  # an int that converts: not plain


def test_the_patched_walks_convert_what_upstreams_convert() -> None:
    values = [Int64(5), ObjectId(), Binary(b"\x01", 0), uuid.UUID(int=3), b"raw", {"n": [Int64(1), "x"]}]
    for original in (decode_wire_value, encode_wire_value):
        patched = embedded_wire_values.plain_first(original)
        for value in values:
            assert patched(value) == original(value)
            assert type(patched(value)) is type(original(value))


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_wire_values.apply() is False
