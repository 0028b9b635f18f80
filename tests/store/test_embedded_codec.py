"""service.store.embedded_codec: the embedded store encodes a plain document in one walk, into
exactly what mongoeco's own encoding gives, and leaves everything else (and every error) to it."""

from __future__ import annotations

import decimal
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import mongoeco
import pytest
from bson import Binary as BsonBinary
from bson import ObjectId as BsonObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from mongoeco.core import codec
from mongoeco.core.codec import DocumentCodec
from mongoeco.types import Binary, ObjectId
from pymongo import MongoClient

from service.store import embedded_codec
from service.store.embedded import start_embedded_store
from service.store.embedded_pin import PINNED_VERSION

encode = embedded_codec.plain_encoder(DocumentCodec.encode)  # this process does not apply the patch

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 64), max_value=1 << 64),  # some out of the int64 range
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=8))])),
    st.binary(max_size=20).map(lambda data: Binary(data, subtype=0)),
    st.binary(max_size=20).map(BsonBinary),
    st.uuids(),
    st.sampled_from([ObjectId(), BsonObjectId(), decimal.Decimal("1.5"), frozenset({1}), (1, "a")]),
)
keys = st.one_of(st.text(max_size=4), st.sampled_from(["$mongoeco", "type", "value", 1]))
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=20
)


def outcome(encoder: Any, value: Any) -> Any:
    try:
        return ("encoded", encoder(value))
    except Exception as error:
        return ("raised", type(error), str(error))


@settings(max_examples=400, deadline=None)
@given(values)
def test_any_value_is_encoded_or_refused_as_mongoeco_does(value: Any) -> None:
    assert outcome(encode, value) == outcome(DocumentCodec.encode, value)


def test_a_pushed_record_is_encoded_as_mongoeco_does() -> None:
    record = {
        "_id": "VISIT:v-1",
        "version": 3,
        "fields": {"outletId": "o1", "status": "PLANNED", "plannedAt": datetime(2026, 11, 20, 1, 2, 3, 456789)},
        "deleted": False,
        "reps": ["rep1"],
        "crdt": Binary(b"\x01\x02", subtype=0),
        "crdtFrontiers": None,
        "seq": 1 << 40,
        "when": datetime(2026, 11, 20, 9, tzinfo=timezone(timedelta(hours=8))),
        "id": uuid.uuid4(),
    }
    internal = DocumentCodec.mark_internal(record)  # what the engines store
    assert encode(record) == DocumentCodec.encode(record)
    assert encode(internal) == DocumentCodec.encode(internal)
    planned = {"$mongoeco": {"type": "datetime", "value": "2026-11-20T01:02:03.456000"}}
    assert encode(record)["fields"]["plannedAt"] == planned


def test_upstream_validates_a_document_once_per_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the patch removes, unpatched: each level validates its whole subtree again."""
    assert mongoeco.__version__ == PINNED_VERSION  # else re-check the patch against the new version
    validated: list[Any] = []
    original = codec.validate_bson_value

    def validate(value: Any) -> None:
        validated.append(value)
        original(value)

    monkeypatch.setattr(codec, "validate_bson_value", validate)
    DocumentCodec.encode({"a": {"b": {"c": "x"}}})
    assert len(validated) == 4  # the document, {"b": ...}, {"c": ...} and "x"
    validated.clear()
    encode({"a": {"b": {"c": "x"}}})
    assert validated == []


@pytest.mark.parametrize("sqlite", [True, False], ids=["sqlite", "memory"])
def test_the_patched_store_keeps_documents_as_they_were_written(tmp_path: Any, sqlite: bool) -> None:
    embedded = start_embedded_store(tmp_path if sqlite else None)
    written = {
        "_id": "r1",
        "n": 1 << 40,
        "at": datetime(2026, 11, 20, 1, 2, 3, 456000, tzinfo=UTC),
        "fields": {"tags": ["a", {"b": None}], "ok": True, "x": 1.5},
        "crdt": b"\x00\x01",  # BSON binary, subtype 0
        "oid": BsonObjectId("0123456789abcdef01234567"),
    }
    try:
        with MongoClient[dict[str, Any]](embedded.uri, tz_aware=True) as client:
            things = client.db.things
            things.insert_many([written, {"_id": "r2"}])
            assert things.find_one({"_id": "r1"}) == written
            assert things.find_one({"fields.tags": "a"}, {"_id": 1}) == {"_id": "r1"}
    finally:
        embedded.stop()


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_codec.apply() is False
