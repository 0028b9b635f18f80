"""Embedded store (mongoeco 4.11.0): its document codec encodes a plain document in one walk.

``DocumentCodec.encode`` (codec.py:230) turns a document into the engine's form. The wire
``insert`` runs it on every document (``to_internal``, codec.py:211), the SQLite engine runs
it again to store the document as JSON (sqlite.py:1460), and the memory engine to store it
(memory.py:1074). For a dict it first validates the whole subtree (``validate_bson_value``,
which wraps every number in a dataclass to check its range), then encodes each value, which
validates that value's subtree again: a field at depth d is validated d+1 times. Each
scalar then goes through some thirty ``isinstance`` checks. A push of 20 writes some 60
documents (records, receipts, history), at ~140 µs each, twice.

The patch walks the value once when it holds only dicts, lists, str, bool, float, None,
ints in the int64 range and datetimes, and returns the encoding the original returns. It
hands binaries, UUIDs, ObjectIds and mongoeco's number wrappers to the original one value
at a time: for those neither validation nor encoding can raise. On anything else (a set, a
key that is not a str, an int out of range, a ``$mongoeco`` key, SON, Decimal, ...) it runs
the original on the whole value, which then encodes or raises exactly as before.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}
_INT64 = range(-(1 << 63), 1 << 63)


class _NotPlain(Exception):
    """The value holds something only the original encoding handles."""


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.core.codec import DocumentCodec

    original = _ORIGINALS["encode"] = DocumentCodec.encode
    DocumentCodec.encode = staticmethod(plain_encoder(original))  # type: ignore[assignment]


def plain_encoder(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``original`` (mongoeco's ``DocumentCodec.encode``) with a single walk for plain values."""
    from bson.binary import Binary as BsonBinary
    from bson.objectid import ObjectId as BsonObjectId
    from mongoeco.core.bson_scalars import BsonDouble, BsonInt32, BsonInt64, normalize_utc_bson_datetime
    from mongoeco.core.codec import _InternalBsonArray, _InternalBsonBinary, _InternalBsonDocument
    from mongoeco.types import Binary, ObjectId

    marker = "$mongoeco"  # DocumentCodec._MARKER: a dict holding it may be encoded as a tagged "dict"
    same: set[type] = {str, bool, float, type(None)}
    documents: set[type] = {dict, _InternalBsonDocument}
    arrays: set[type] = {list, _InternalBsonArray}
    binaries_and_ids = {Binary, _InternalBsonBinary, BsonBinary, uuid.UUID, ObjectId, BsonObjectId}
    leaves: set[type] = {*binaries_and_ids, BsonInt32, BsonInt64, BsonDouble}

    def walk(value: Any) -> Any:
        kind = type(value)
        if kind in same:
            return value
        if kind is int:
            if value in _INT64:
                return value
            raise _NotPlain
        if kind in documents:
            if marker in value:
                raise _NotPlain
            encoded = {}
            for key, item in value.items():
                if type(key) is not str:
                    raise _NotPlain
                encoded[key] = walk(item)
            return encoded
        if kind in arrays:
            return [walk(item) for item in value]
        if kind is datetime.datetime:
            return {marker: {"type": "datetime", "value": normalize_utc_bson_datetime(value).isoformat()}}
        if kind in leaves:
            return original(value)
        raise _NotPlain

    def encode(data: Any) -> Any:
        try:
            return walk(data)
        except _NotPlain:
            return original(data)

    return encode
