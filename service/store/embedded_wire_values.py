"""Embedded store (mongoeco 4.11.0): a plain value crosses the wire without being inspected.

Every document a command brings is decoded by PyMongo's ``bson`` (C) and then walked by
``decode_wire_value`` (bson_bridge.py:58), which asks of every value, strings and numbers
included, whether it is one of ~12 BSON types to convert, one ``isinstance`` after another;
every reply is walked the same way by ``encode_wire_value``. ~45 µs a history event's
document, where ``bson`` decodes it in ~9: the walks were ~5% of the store's CPU with 50 phones
pushing (a push of 20 brings ~60 documents).

Both walks return a ``str``, ``int``, ``float``, ``bool``, ``None`` or ``datetime`` as it came
(exact types: ``bson.Int64`` is an ``int`` that converts), and rebuild a plain ``dict`` or
``list`` from their items. This patch does just that for those types before asking the
original, which still converts everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from service.store.embedded_pin import apply_once

PLAIN = frozenset({str, int, float, bool, type(None), datetime})  # both walks return these as they came
_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def plain_first(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert``, answering plain values, dicts and lists itself."""

    def walk(value: Any) -> Any:
        kind = type(value)
        if kind in PLAIN:
            return value
        if kind is dict:
            return {key: item if type(item) in PLAIN else walk(item) for key, item in value.items()}
        if kind is list:
            return [item if type(item) in PLAIN else walk(item) for item in value]
        return convert(value)

    return walk


def _patch() -> None:
    from mongoeco.wire import protocol

    _ORIGINALS.update(decode=protocol.decode_wire_value, encode=protocol.encode_wire_value)
    protocol.decode_wire_value = plain_first(protocol.decode_wire_value)  # type: ignore[assignment]
    protocol.encode_wire_value = plain_first(protocol.encode_wire_value)  # type: ignore[assignment]
