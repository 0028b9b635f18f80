"""Embedded store (mongoeco 4.11.0, SQLite engine): where a top-level field holds an array is one look.

Before every insert the engine checks, for each compound index of the collection, that the
document holds an array on at most one of its fields (``_validate_compound_multikey_shape``,
sqlite.py:1982); each field's array paths come from ``_array_paths_for_index_field``
(sqlite.py:1907), a recursive walk that splits the field's path and builds a closure each
time: ~130 µs for a history event's four compound indexes, ~4 ms of a push of 20 (~60 documents).

Every field of FieldSync's compound indexes is top-level. For a field without a dot the walk
finds the field itself when the document's value there is a list, and nothing otherwise;
this patch answers that directly and leaves dotted paths to the walk.
"""

from __future__ import annotations

from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.engines import sqlite

    engine_cls = sqlite.SQLiteEngine
    original = _ORIGINALS["paths"] = engine_cls._array_paths_for_index_field

    def _array_paths_for_index_field(document: Any, field: str) -> set[str]:
        if "." in field:
            return original(document, field)
        return {field} if isinstance(document.get(field), list) else set()

    engine_cls._array_paths_for_index_field = staticmethod(_array_paths_for_index_field)  # type: ignore[method-assign,assignment]
