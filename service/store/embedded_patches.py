"""Monkeypatches, pinned to mongoeco 4.11.0, that stop inserts, upserts and
{_id, ...} / {_id: {$in: [...]}, ...} lookups from scanning the whole collection, without changing which
writes are accepted or rejected.

Where the scans are (line numbers are mongoeco 4.11.0):

M1 memory.py:2866-2881 and S1 sqlite.py:3151-3169, duplicate ``_id``. Every
   single-document insert passes ``scan_payload_id=True`` (the wire ``insert``
   command inserts documents one at a time). After the exact storage-key lookup,
   the engine decodes every stored document and compares ``bson_equality_key(_id)``.
   That scan is only needed when the storage key is stricter than BSON equality
   (1 / 1.0 / Int64(1), bytes / Binary, documents holding those). For a ``str``
   ``_id`` (and for an ObjectId on the memory engine) the two keys match the same
   values, so the lookup already finds every duplicate.
M2 memory.py:2903-2944, compound unique index. Only single-field unique
   indexes are checked through their index map. A compound one decodes every
   stored document.
S2 sqlite.py:3236-3259, compound unique index. There is no scalar-entry table
   for a compound index, so every row is loaded and decoded in Python.
S3 _sqlite_write_ops.py:153. Each insert clears the collection feature cache,
   so the next uniqueness check runs ``json_type(document, '$.f') = 'array'`` over
   every row, once for each field of each compound unique index (sqlite.py:2973).
M3 memory.py:2973-3007 (and M4, ``{_id: {$in}}``, which it scans too) and S4 _sqlite_fast_paths.py:312 with
   _sqlite_read_fast_path_runtime.py:277, lookups by ``_id``. If the document is
   not found (so every upsert that inserts), or on SQLite if the filter has more
   fields than ``_id``, the lookup falls back to a scan.

W1 _database_admin_write_commands.py:188-201, the wire ``insert`` command. It
   inserts its documents one ``insert_one`` at a time, so a batch of N pays N
   single-document writes (each with its own uniqueness checks, commit and change
   dispatch). ``insert_many`` takes mongoeco's batch path, with the same ordered /
   unordered semantics and the same per-document errors (index, code, message);
   the patch runs it and reports its result or its BulkWriteError in the command's
   reply, as the loop does. It hands ``insert_many`` the documents already converted
   (``DocumentCodec.to_internal``, what ``insert_many`` does to each): the command owns
   them, and ``insert_many`` deep-copies a converted document by returning it, where it
   copied each plain one twice (_collection_insert.py:57-58), ~6% of a push's store CPU.
   A document without ``_id`` stays plain (``insert_many`` gives it one), and if converting
   fails, ``insert_many`` gets them all plain and raises the same error where it did.

How the patches stay safe: each one only proves that a slow path cannot find
anything. If it cannot prove that, or it finds a possible duplicate, it calls the
original method unchanged. That method then raises just as before: the same
DuplicateKeyError (code 11000), from the same index, in the same order.
``apply()`` must run before an engine is created (``_serve`` does this).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from service.store.embedded_pin import PINNED_VERSION

_ORIGINALS: dict[tuple[type, str], Any] = {}
_BUILT_BY_PATCH = "_fieldsync_compound_keys_exact"  # set on memory engines made after apply()
_state = threading.local()  # per thread: .hidden (S2), .inserting (S3)
_SIMPLE_VALUE_TYPES = (str, int, bool)


def applied() -> bool:
    return bool(_ORIGINALS)


def apply() -> bool:
    """Install the patches. On any other mongoeco version, warn and return False."""
    import mongoeco

    if mongoeco.__version__ != PINNED_VERSION:
        print(
            f"WARNING: service.store.embedded_patches is pinned to mongoeco {PINNED_VERSION}, "
            f"found {mongoeco.__version__}: insert performance patches NOT applied.",
            file=sys.stderr,
            flush=True,
        )
        return False
    if not applied():
        _patch_memory()
        _patch_sqlite()
        _patch_wire_insert()
    return True


def _replace(cls: type, name: str, function: Any) -> Any:
    original = cls.__dict__[name]
    _ORIGINALS[(cls, name)] = original
    setattr(cls, name, function)
    return original


def _exact_id(value: Any, id_types: tuple[type, ...]) -> bool:
    # For these types bson_equality_key == bson_engine_key, and no value of another
    # type has the same equality key (core/bson_ordering.py:48-139). Two such _ids are
    # therefore equal, by query or by unique index, exactly when their storage keys are.
    return type(value) in id_types


def _id_lookup_value(plan: Any, query_plan: Any) -> Any:
    """The value of a top-level {_id: value} equality in the plan, else None."""
    if isinstance(plan, query_plan.EqualsCondition) and plan.field == "_id":
        return plan.value
    if isinstance(plan, query_plan.AndCondition):
        for clause in plan.clauses:
            if isinstance(clause, query_plan.EqualsCondition) and clause.field == "_id":
                return clause.value
    return None


def _id_in_values(plan: Any, query_plan: Any) -> tuple[Any, ...] | None:
    """The values of a top-level {_id: {$in: [...]}} in the plan, else None."""
    clauses = plan.clauses if isinstance(plan, query_plan.AndCondition) else (plan,)
    for clause in clauses:
        if isinstance(clause, query_plan.InCondition) and clause.field == "_id" and not clause.null_matches_undefined:
            return tuple(clause.values)
    return None


def _patch_memory() -> None:
    from mongoeco.core import query_plan
    from mongoeco.engines import memory
    from mongoeco.types import OBJECT_ID_TYPES

    engine_cls = memory.MemoryEngine
    id_types = (str, *OBJECT_ID_TYPES)

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        setattr(self, _BUILT_BY_PATCH, True)  # its index maps are built by _index_keys below

    def _index_keys(self, document, fields):
        # M2. A compound index map is written only by _rebuild_index_data_locked and
        # _update_indexes_locked. Nothing else reads it: queries and TTL use only
        # single-field maps (memory.py:3026, 897). The patch stores in it exactly
        # the keys the uniqueness check compares (every multikey combination,
        # with missing == null), so _ensure_unique_indexes can look keys up there.
        if len(fields) != 1:
            return self._unique_index_keys(document, fields)
        return original_index_keys(self, document, fields)

    def _ensure_unique_indexes(self, db_name, coll_name, candidate, **kwargs):
        if (
            kwargs.get("scan_payload_id")
            and kwargs.get("check_id_storage")
            and _exact_id(candidate.get("_id"), id_types)
        ):
            kwargs["scan_payload_id"] = False  # M1: the lookup at memory.py:2857 suffices
        if not getattr(self, _BUILT_BY_PATCH, False):
            return original_ensure(self, db_name, coll_name, candidate, **kwargs)
        indexes_view = kwargs.get("indexes_view")
        storage_view = kwargs.get("storage_view")
        data_view = kwargs.get("index_data_view")
        indexes = (self._indexes if indexes_view is None else indexes_view).get(db_name, {}).get(coll_name, [])
        coll = (self._storage if storage_view is None else storage_view).get(db_name, {}).get(coll_name, {})
        maps = (self._index_data if data_view is None else data_view).get(db_name, {}).get(coll_name, {})
        exclude = kwargs.get("exclude_storage_key")
        if exclude is not None and exclude not in coll:  # as memory.py:2852-2854
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
                    return original_ensure(self, db_name, coll_name, candidate, **kwargs)  # it raises
                for key in self._unique_index_keys(candidate, fields):
                    if any(storage_key != exclude for storage_key in index_map.get(key, ())):
                        # Possibly a duplicate: let the original scan decide and raise.
                        return original_ensure(self, db_name, coll_name, candidate, **kwargs)
            proven.append(index)
        if proven:
            # The original reads indexes_view only to get this list. The proven
            # indexes cannot raise, so leaving them out only saves the scan.
            kwargs["indexes_view"] = {
                db_name: {coll_name: [index for index in indexes if all(index is not p for p in proven)]}
            }
        return original_ensure(self, db_name, coll_name, candidate, **kwargs)

    def _candidate_items_for_plan_locked(self, coll, query_plan_node, **kwargs):
        # M3. A document matching {_id: v} has an _id equal to v. For these types that
        # means the same storage key (the values_equal type check is strict). So if
        # that key is absent, the scan the original falls back to matches nothing.
        # M4. The same holds for each value of {_id: {$in: [...]}}: the candidates are
        # the documents stored under those keys (the caller then matches the whole filter).
        if kwargs.get("collation") is None:
            id_value = _id_lookup_value(query_plan_node, query_plan)
            if _exact_id(id_value, id_types) and self._storage_key(id_value) not in coll:
                return []
            id_values = _id_in_values(query_plan_node, query_plan)
            if id_values is not None and all(_exact_id(v, id_types) for v in id_values):
                keys = dict.fromkeys(self._storage_key(v) for v in id_values)
                return [(key, coll[key]) for key in keys if key in coll]
        return original_candidates(self, coll, query_plan_node, **kwargs)

    original_init = _replace(engine_cls, "__init__", __init__)
    original_index_keys = _replace(engine_cls, "_index_keys", _index_keys)
    original_ensure = _replace(engine_cls, "_ensure_unique_indexes", _ensure_unique_indexes)
    original_candidates = _replace(engine_cls, "_candidate_items_for_plan_locked", _candidate_items_for_plan_locked)


def _patch_sqlite() -> None:
    from mongoeco.core import query_plan
    from mongoeco.core.codec import DocumentCodec
    from mongoeco.core.filtering import QueryEngine
    from mongoeco.engines import sqlite
    from mongoeco.engines._sqlite_connection import sqlite_read_scope
    from mongoeco.engines.sqlite_query import index_expressions_sql, json_path_for_field, path_array_prefixes

    engine_cls = sqlite.SQLiteEngine
    id_types = (str,)  # storage key is repr((type(v), v)) (sqlite.py:1260): type-exact

    def _load_indexes(self, db_name, coll_name):
        indexes = original_load_indexes(self, db_name, coll_name)
        hidden = getattr(_state, "hidden", None)
        if hidden is not None and hidden[0] is self and hidden[1] == (db_name, coll_name):
            return [index for index in indexes if index["name"] not in hidden[2]]
        return indexes

    def _compound_key_is_free(self, conn, db_name, coll_name, document, index, exclude) -> bool:
        """True only if the final scan (sqlite.py:3236-3259) certainly finds nothing.

        It compares the same keys, but only on the rows the physical index finds for the key's
        strings and nulls (a GridFS chunk: its ``files_id``), a superset of the duplicates."""
        fields = index["fields"]
        key = tuple(self._index_value(document, field) for field in fields)
        sql = "SELECT storage_key, document FROM documents WHERE db_name = ? AND coll_name = ?"
        params: list[Any] = [db_name, coll_name]
        narrowed = False
        for field, component in zip(fields, key, strict=True):
            type_sql, value_sql = index_expressions_sql(field)  # the physical index's columns
            if component == ("none", None):  # null or missing: no tag, SQL NULL
                sql += f" AND {type_sql} = '' AND {value_sql} IS NULL"
            elif component[0] == "str" and isinstance(component[1], str) and "\x00" not in component[1]:
                # Only a str has this equality key. DocumentCodec stores a str as a
                # plain JSON string, with no type tag, and json_extract returns it as is.
                sql += f" AND {type_sql} = '' AND {value_sql} = ?"
                params.append(component[1])
            else:
                continue  # numbers, ObjectIds, dates...: not narrowed in SQL, compared below
            narrowed = True
        if not narrowed:
            return False  # the rows to compare would be the whole collection: keep the original scan
        for storage_key, payload in conn.execute(sql, params):
            if exclude is not None and storage_key == exclude:
                continue
            existing = self._deserialize_document(payload)
            if not sqlite.document_in_virtual_index(existing, index):
                continue
            if tuple(self._index_value(existing, field) for field in fields) == key:
                return False  # a duplicate: the original raises it
        return True

    def _validate_document_against_unique_indexes(
        self, db_name, coll_name, document, *, exclude_storage_key=None, skip_id_check=False, scan_payload_id=False
    ):
        if scan_payload_id and not skip_id_check and _exact_id(document.get("_id"), id_types):
            scan_payload_id = False  # S1: the storage-key lookup at sqlite.py:3137 suffices
        proven: set[str] = set()
        if self._codec is DocumentCodec:
            conn = self._require_connection()
            for index in self._load_indexes(db_name, coll_name):
                if len(index["fields"]) < 2 or not index["unique"] or index.get("collation") is not None:
                    continue
                if not sqlite.document_in_virtual_index(document, index):
                    proven.add(index["name"])  # the original skips it as well
                    continue
                # The original uses this same test to choose its multikey scan. When it
                # is False the candidate has no array on these paths, so its
                # compound-shape check for this index cannot fail either.
                if self._unique_index_uses_multikey_values(db_name, coll_name, document, index):
                    continue
                if _compound_key_is_free(self, conn, db_name, coll_name, document, index, exclude_storage_key):
                    proven.add(index["name"])
        previous = getattr(_state, "hidden", None)
        _state.hidden = (self, (db_name, coll_name), proven) if proven else None
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
            _state.hidden = previous

    def _insert_document_sync(self, db_name, coll_name, document, *args, **kwargs):
        previous = getattr(_state, "inserting", None)
        _state.inserting = (self, db_name, coll_name, document)
        try:
            return original_insert(self, db_name, coll_name, document, *args, **kwargs)
        finally:
            _state.inserting = previous

    def _has_array(conn, serialized: str, feature: str) -> bool:
        kind, field = feature.split(":", 1)
        paths = (field,) if kind == "top_level_array" else path_array_prefixes(field)
        query = "SELECT json_type(?, ?) = 'array'"
        return any(conn.execute(query, (serialized, json_path_for_field(p))).fetchone()[0] for p in paths)

    def _invalidate_collection_features_cache(self, db_name=None, coll_name=None):
        # S3. "No row has an array at path p" (sqlite.py:2715, 2973) is still true after
        # inserting a document without one. The same json_type test decides that, run
        # on the inserted JSON. Other features, and True values, are dropped as before.
        keep = {}
        inserting = getattr(_state, "inserting", None)
        if inserting is not None and inserting[0] is self and inserting[1:3] == (db_name, coll_name):
            keep = {
                key: value
                for key, value in self._collection_features_cache.items()
                if key[:2] == (db_name, coll_name)
                and value is False
                and key[2].startswith(("top_level_array:", "traverses_array:"))
            }
            if keep:
                try:
                    serialized = self._serialize_document(inserting[3])
                    conn = self._require_connection()
                    keep = {key: False for key in keep if not _has_array(conn, serialized, key[2])}
                except Exception:
                    keep = {}
        original_invalidate(self, db_name, coll_name)
        self._collection_features_cache.update(keep)

    def _select_first_document_for_plan(self, db_name, coll_name, plan, *, hint=None, context=None):
        # S4. Any document matching {_id: s, ...} has _id == s, so its row has storage
        # key repr((str, s)). Without that row nothing matches. With it, the only
        # candidate is checked by QueryEngine.match_plan, the engine's reference matcher
        # (used by its own Python fallbacks), and only for plain equalities.
        id_value = _id_lookup_value(plan, query_plan)
        if hint is not None or not _exact_id(id_value, id_types) or self._codec is not DocumentCodec:
            return original_select(self, db_name, coll_name, plan, hint=hint, context=context)
        conn = self._require_connection(context)
        with self._bind_connection(conn), sqlite_read_scope(conn):
            row = conn.execute(
                "SELECT storage_key, document FROM documents WHERE db_name = ? AND coll_name = ? AND storage_key = ?",
                (db_name, coll_name, self._storage_key(id_value)),
            ).fetchone()
        if row is None:
            return None
        simple = isinstance(plan, query_plan.AndCondition) and all(
            isinstance(clause, query_plan.EqualsCondition)
            and "." not in clause.field
            and not clause.field.startswith("$")
            and type(clause.value) in _SIMPLE_VALUE_TYPES
            for clause in plan.clauses
        )
        if not simple:
            return original_select(self, db_name, coll_name, plan, hint=hint, context=context)
        document = self._deserialize_document(row[1])
        return (row[0], document) if QueryEngine.match_plan(document, plan) else None

    original_load_indexes = _replace(engine_cls, "_load_indexes", _load_indexes)
    original_validate = _replace(
        engine_cls, "_validate_document_against_unique_indexes", _validate_document_against_unique_indexes
    )
    original_insert = _replace(engine_cls, "_insert_document_sync", _insert_document_sync)
    original_invalidate = _replace(
        engine_cls, "_invalidate_collection_features_cache", _invalidate_collection_features_cache
    )
    original_select = _replace(engine_cls, "_select_first_document_for_plan", _select_first_document_for_plan)


def _patch_wire_insert() -> None:
    from mongoeco.api._async import _database_admin_write_commands as commands
    from mongoeco.core.codec import DocumentCodec
    from mongoeco.errors import BulkWriteError
    from mongoeco.types import WriteCommandResult, WriteErrorEntry

    service = commands.DatabaseAdminWriteCommandService

    async def command_insert(self, spec, *, session=None):
        documents = spec.get("documents")
        if not isinstance(documents, list) or len(documents) < 2:
            return await original_insert(self, spec, session=session)
        # As the original (lines 172-184) prepares its loop.
        admin = self._admin
        collection_name = admin._require_collection_name(spec.get("insert"), "insert")
        documents = admin._normalize_insert_documents(documents)
        ordered = admin._normalize_ordered_from_command(spec.get("ordered"))
        bypass = commands.command_boolean(
            spec.get("bypassDocumentValidation", False), "bypassDocumentValidation", numeric=True
        )
        acknowledged = commands.write_command_acknowledged(spec, dialect=admin._mongodb_dialect.key)
        collection = admin._database.get_collection(collection_name)
        try:
            converted = [
                DocumentCodec.to_internal(document) if "_id" in document else document for document in documents
            ]
        except Exception:
            converted = documents
        try:
            result = await collection.insert_many(
                converted, ordered=ordered, bypass_document_validation=bypass, session=session
            )
            inserted, errors = len(result.inserted_ids), []
        except BulkWriteError as error:
            details = getattr(error, "details", None) or {}  # pymongo's BulkWriteError, as mongoeco raises it
            inserted = details.get("nInserted", 0)
            errors = [
                WriteErrorEntry(
                    index=entry["index"],
                    code=entry.get("code"),
                    errmsg=entry.get("errmsg", ""),
                    details={k: v for k, v in entry.items() if k not in ("index", "code", "errmsg", "op")} or None,
                )
                for entry in details.get("writeErrors", [])
            ]
        return commands._write_command_result(
            WriteCommandResult(count=inserted, write_errors=errors or None), acknowledged=acknowledged
        )

    original_insert = _replace(service, "command_insert", command_insert)
