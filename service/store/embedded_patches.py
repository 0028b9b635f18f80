"""Pinned monkeypatches that stop mongoeco 4.11.0 from scanning a whole
collection on every insert, without changing which writes are rejected.

Why inserts were O(documents already there) (line numbers are mongoeco 4.11.0):

1. Duplicate ``_id`` (memory.py:2866-2881, sqlite.py:3151-3169). Every
   single-document insert, and the wire ``insert`` command inserts documents
   one at a time, passes ``scan_payload_id=True``. After the exact storage-key
   lookup the engine then decodes every stored document to compare
   ``bson_equality_key(_id)``. The scan exists for ``_id`` values whose storage key
   is finer than BSON equality (1 / 1.0 / Int64(1), bytes / Binary, documents
   holding those). For a ``str`` ``_id`` (and an ObjectId on the memory engine)
   both keys identify the same values, so the lookup already finds every duplicate.
2. Compound unique indexes on the memory engine (memory.py:2903-2944). Only
   single-field unique indexes are checked through their index map; a compound
   one decodes every stored document and computes its keys.
3. Compound unique indexes on the SQLite engine (sqlite.py:3230-3254). A compound
   index has no scalar-entry table, so the engine loads and decodes every row of
   the collection in Python and compares the index keys.

Every patch below only decides that a slow check cannot find a conflict. If it
cannot decide that, or it sees a possible conflict, it calls the original
method unchanged, which then raises exactly as before: the same
DuplicateKeyError (code 11000) from the same index, in the same order.
``apply()`` must run before an engine is created (``_serve`` does this).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

PINNED_VERSION = "4.11.0"
_ORIGINALS: dict[tuple[type, str], Any] = {}
_BUILT_BY_PATCH = "_fieldsync_compound_keys_exact"  # set on engines made after apply()
_hidden = threading.local()  # SQLite: unique indexes already proved free of conflict


def applied() -> bool:
    return bool(_ORIGINALS)


def apply() -> bool:
    """Install the patches; return False (with a warning) on any other mongoeco."""
    import mongoeco

    if mongoeco.__version__ != PINNED_VERSION:
        print(
            f"WARNING: service.store.embedded_patches is pinned to mongoeco {PINNED_VERSION} "
            f"but {mongoeco.__version__} is installed; insert performance patches NOT applied.",
            file=sys.stderr,
            flush=True,
        )
        return False
    if applied():
        return True
    _patch_memory()
    _patch_sqlite()
    return True


def _replace(cls: type, name: str, function: Any) -> None:
    _ORIGINALS[(cls, name)] = cls.__dict__[name]
    setattr(cls, name, function)


def _mark_engine_init(cls: type) -> None:
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        setattr(self, _BUILT_BY_PATCH, True)

    _replace(cls, "__init__", __init__)


def _id_keys_are_exact(value: Any, object_id_types: tuple[type, ...]) -> bool:
    # bson_equality_key(v) == bson_engine_key(v) for these types, and no value of
    # another type has that equality key (mongoeco/core/bson_ordering.py:48-139), so two
    # such _ids are BSON-equal exactly when their storage keys are equal.
    return type(value) is str or type(value) in object_id_types


def _patch_memory() -> None:
    from mongoeco.engines import memory
    from mongoeco.types import OBJECT_ID_TYPES

    engine_cls = memory.MemoryEngine
    original_index_keys = engine_cls._index_keys
    original_ensure = engine_cls._ensure_unique_indexes

    def _index_keys(self, document, fields):
        # A compound index map is written only by _rebuild_index_data_locked and
        # _update_indexes_locked and read by nothing else (queries and TTL use single-field
        # maps; memory.py:3026). Storing exactly the keys the uniqueness check compares
        # (all multikey combinations, missing == null) makes the map usable for that check.
        if len(fields) != 1:
            return self._unique_index_keys(document, fields)
        return original_index_keys(self, document, fields)

    def _ensure_unique_indexes(self, db_name, coll_name, candidate, **kwargs):
        if (
            kwargs.get("scan_payload_id")
            and kwargs.get("check_id_storage")
            and _id_keys_are_exact(candidate.get("_id", None), OBJECT_ID_TYPES)
        ):
            # The exact storage-key lookup just before the scan (memory.py:2857) finds
            # every duplicate of such an _id. Numeric _ids never get here.
            kwargs["scan_payload_id"] = False
        if not getattr(self, _BUILT_BY_PATCH, False):
            return original_ensure(self, db_name, coll_name, candidate, **kwargs)
        indexes_view = kwargs.get("indexes_view")
        storage_view = kwargs.get("storage_view")
        index_data_view = kwargs.get("index_data_view")
        indexes = (self._indexes if indexes_view is None else indexes_view).get(db_name, {}).get(coll_name, [])
        coll = (self._storage if storage_view is None else storage_view).get(db_name, {}).get(coll_name, {})
        maps = (self._index_data if index_data_view is None else index_data_view).get(db_name, {}).get(coll_name, {})
        exclude = kwargs.get("exclude_storage_key")
        if exclude is not None and exclude not in coll:  # as memory.py:2853
            exclude = self._storage_key(exclude)
        proven = []
        for index in indexes:
            fields = index["fields"]
            index_map = maps.get(index["name"])
            if (
                len(fields) < 2
                or not index.get("unique")
                or index.get("collation") is not None
                or not memory.is_ordered_index_spec(index["key"])
                or index_map is None
            ):
                continue
            if memory.document_in_virtual_index(candidate, index):
                if len(self._compound_multikey_array_paths(candidate, fields)) > 1:
                    # The original raises "more than one array field" for it.
                    return original_ensure(self, db_name, coll_name, candidate, **kwargs)
                for key in self._unique_index_keys(candidate, fields):
                    if any(storage_key != exclude for storage_key in index_map.get(key, ())):
                        # Possible duplicate: the original scan decides and raises.
                        return original_ensure(self, db_name, coll_name, candidate, **kwargs)
            proven.append(index)
        if proven:
            # The original only reads indexes_view for this list; the proven indexes
            # could not raise, so leaving them out changes nothing but the time spent.
            remaining = [index for index in indexes if not any(index is p for p in proven)]
            kwargs["indexes_view"] = {db_name: {coll_name: remaining}}
        return original_ensure(self, db_name, coll_name, candidate, **kwargs)

    _replace(engine_cls, "_index_keys", _index_keys)
    _replace(engine_cls, "_ensure_unique_indexes", _ensure_unique_indexes)
    _mark_engine_init(engine_cls)


def _patch_sqlite() -> None:
    from mongoeco.core.codec import DocumentCodec
    from mongoeco.engines import sqlite
    from mongoeco.engines.sqlite_query import index_expressions_sql

    engine_cls = sqlite.SQLiteEngine
    original_validate = engine_cls._validate_document_against_unique_indexes
    original_load_indexes = engine_cls._load_indexes

    def _load_indexes(self, db_name, coll_name):
        indexes = original_load_indexes(self, db_name, coll_name)
        hidden = getattr(_hidden, "value", None)
        if hidden is not None and hidden[0] is self and hidden[1] == (db_name, coll_name):
            return [index for index in indexes if index["name"] not in hidden[2]]
        return indexes

    def _compound_key_has_no_duplicate(self, conn, db_name, coll_name, document, index, exclude) -> bool:
        """True only when the final scan (sqlite.py:3230-3254) certainly finds nothing."""
        fields = index["fields"]
        key = tuple(self._index_value(document, field) for field in fields)
        sql = "SELECT storage_key, document FROM documents WHERE db_name = ? AND coll_name = ?"
        params: list[Any] = [db_name, coll_name]
        for field, component in zip(fields, key, strict=True):
            type_sql, value_sql = index_expressions_sql(field)  # the physical index columns
            if component == ("none", None):  # null or missing: JSON null / no path
                sql += f" AND {type_sql} = '' AND {value_sql} IS NULL"
            elif component[0] == "str" and isinstance(component[1], str) and "\x00" not in component[1]:
                # Only a str has this equality key, and DocumentCodec stores a str as a
                # plain JSON string, so json_extract yields it and there is no type tag.
                sql += f" AND {type_sql} = '' AND {value_sql} = ?"
                params.append(component[1])
            else:
                return False  # numbers, ObjectIds, dates...: keep the original scan
        for storage_key, payload in conn.execute(sql, params):
            if exclude is not None and storage_key == exclude:
                continue
            existing = self._deserialize_document(payload)
            if not sqlite.document_in_virtual_index(existing, index):
                continue
            if tuple(self._index_value(existing, field) for field in fields) == key:
                return False  # a duplicate: let the original raise it
        return True

    def _validate_document_against_unique_indexes(
        self, db_name, coll_name, document, *, exclude_storage_key=None, skip_id_check=False, scan_payload_id=False
    ):
        if scan_payload_id and not skip_id_check and type(document.get("_id", None)) is str:
            # storage_key = repr((str, value)) (sqlite.py:1260): BSON-equal str _ids have
            # equal storage keys, so the exact lookup at sqlite.py:3137 finds every duplicate.
            scan_payload_id = False
        proven: set[str] = set()
        if self._codec is DocumentCodec:
            conn = self._require_connection()
            for index in self._load_indexes(db_name, coll_name):
                if len(index["fields"]) < 2 or not index["unique"] or index.get("collation") is not None:
                    continue
                if not sqlite.document_in_virtual_index(document, index):
                    proven.add(index["name"])  # the original skips it too
                    continue
                # Same test the original uses to choose its full multikey scan; when it
                # says no, the candidate has no array on the index paths, so skipping
                # the compound-shape validation for this index changes nothing either.
                if self._unique_index_uses_multikey_values(db_name, coll_name, document, index):
                    continue
                if _compound_key_has_no_duplicate(self, conn, db_name, coll_name, document, index, exclude_storage_key):
                    proven.add(index["name"])
        previous = getattr(_hidden, "value", None)
        _hidden.value = (self, (db_name, coll_name), proven) if proven else None
        try:
            return original_validate(
                self,
                db_name,
                coll_name,
                document,
                exclude_storage_key=exclude_storage_key,
                skip_id_check=skip_id_check,
                scan_payload_id=scan_payload_id,
            )
        finally:
            _hidden.value = previous

    _replace(engine_cls, "_load_indexes", _load_indexes)
    _replace(engine_cls, "_validate_document_against_unique_indexes", _validate_document_against_unique_indexes)
