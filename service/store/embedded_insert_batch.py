"""Embedded store (mongoeco 4.11.0, SQLite engine): a batch of new plain documents is written in one pass.

A wire ``insert`` (a push's records, receipts and history events: ~60 documents in three
commands) reaches ``SQLiteEngine._insert_documents_sync`` (sqlite.py:5695) as one batch,
already encoded and with its array entries built. For each document the engine then
(_sqlite_write_ops.py:287-398, sqlite.py:5807-5858): validates it against every unique index
(FieldSync's pushed collections have none but ``_id``, which the batch's one ``SELECT`` of its
storage keys already checked); asks SQLite to ``CREATE INDEX IF NOT EXISTS`` each entry index
of the collection again; inserts its row; deletes the array, scalar and TTL entries of the
storage key it has just inserted (there are none: every upstream delete of a document deletes
its entries with it); inserts its array entries, then its scalar entries, then its TTL entries,
each set in a statement of its own; and deep-copies it twice for change events, which no
engine delivers here (``embedded_outbox``). About 100 µs a history event.

For a batch whose every document is new, with a string ``_id`` (its storage key is then exact:
no numeric-``_id`` scan), distinct, into a collection with no unique index besides ``_id``, no
search index, no validator to enforce and the same indexes the batch was prepared with, this
patch writes the same rows with one statement per table for the whole batch (after the same TTL
purge and compound-index shape check, and ensuring each entry index once) and returns the
same outcomes without the copies. Anything else, or any document the shape check refuses,
takes the original path, which accepts or refuses exactly as before.
"""

from __future__ import annotations

from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}
_INSERT_ROWS = "INSERT INTO documents (db_name, coll_name, storage_key, document) VALUES (?, ?, ?, ?)"
_INSERT_ENTRIES = """
    INSERT OR IGNORE INTO {table} (collection_id, index_name, storage_key, element_type, type_score, element_key)
    VALUES (?, ?, ?, ?, ?, ?)
"""
_INSERT_TTL = """
    INSERT INTO ttl_index_entries (collection_id, index_name, storage_key, expires_at_epoch_ms) VALUES (?, ?, ?, ?)
"""


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    import datetime

    from mongoeco.engines import sqlite
    from mongoeco.engines._sqlite_write_scope import sqlite_write_scope
    from mongoeco.engines.results import InsertOutcome
    from mongoeco.engines.virtual_indexes import document_in_virtual_index

    engine_cls = sqlite.SQLiteEngine
    original = _ORIGINALS["insert"] = engine_cls._insert_documents_sync

    def rows_or_none(
        self: Any,
        conn: Any,
        db_name: str,
        coll_name: str,
        documents: list,
        prepared: list,
        *,
        snapshot_indexes: list,
        bypass: bool,
        snapshot_options: Any,
        context: Any,
        now: Any,
    ) -> bool:
        """Write the batch as upstream would, if it qualifies; False (nothing written) when it does not."""
        self._purge_expired_documents_sync(conn, db_name, coll_name, context=context, now=now)
        options = self._collection_options_or_empty_sync(conn, db_name, coll_name)
        indexes = self._load_indexes(db_name, coll_name)
        if (
            (not bypass and (options != snapshot_options or options.get("validator") is not None))
            or indexes != snapshot_indexes
            or any(index["unique"] and index["fields"] != ["_id"] for index in indexes)
            or self._load_search_index_rows(db_name, coll_name)
        ):
            return False
        keys = [storage_key for storage_key, _, _ in prepared]
        self._ensure_collection_row(conn, db_name, coll_name)
        collection_id = self._lookup_collection_id(conn, db_name, coll_name, create=True)
        if collection_id is None:
            return False
        for offset in range(0, len(keys), 900):  # as _sqlite_write_ops.py:270
            chunk = keys[offset : offset + 900]
            query = "SELECT 1 FROM documents WHERE db_name = ? AND coll_name = ? AND storage_key IN ({})"
            if conn.execute(query.format(", ".join("?" * len(chunk))), (db_name, coll_name, *chunk)).fetchone():
                return False
        try:
            for document in documents:
                for index in indexes:
                    if document_in_virtual_index(document, index):
                        self._validate_compound_multikey_shape(document, index)
        except Exception:
            return False  # the original raises it at that document, after inserting those before
        conn.executemany(_INSERT_ROWS, [(db_name, coll_name, key, serialized) for key, serialized, _ in prepared])
        arrays = [(collection_id, *row[:1], key, *row[1:]) for key, _, rows in prepared for row in rows]
        if arrays:
            self._ensure_multikey_physical_indexes_sync(conn, indexes)
            conn.executemany(_INSERT_ENTRIES.format(table="multikey_entries"), arrays)
        scalars = [
            (collection_id, row[0], key, *row[1:])
            for (key, _, _), document in zip(prepared, documents, strict=True)
            for row in self._build_scalar_rows_for_document(key, document, indexes)
        ]
        if scalars:
            self._ensure_scalar_physical_indexes_sync(conn, indexes)
            conn.executemany(_INSERT_ENTRIES.format(table="scalar_index_entries"), scalars)
        self._invalidate_collection_features_cache(db_name, coll_name)
        ttl = [
            (collection_id, index.name, key, expiration)
            for index in indexes
            if index.expire_after_seconds is not None
            for (key, _, _), document in zip(prepared, documents, strict=True)
            if (expiration := self._ttl_expiration_epoch_ms(document, index)) is not None
        ]
        if ttl:
            conn.executemany(_INSERT_TTL, ttl)
        return True

    def _insert_documents_sync(
        self: Any,
        db_name: str,
        coll_name: str,
        documents: list,
        prepared_documents: list,
        snapshot_indexes: list,
        *,
        context: Any,
        bypass_document_validation: bool = False,
        snapshot_options: Any = None,
        operation_context: Any = None,
    ) -> tuple:
        keys = [storage_key for storage_key, _, _ in prepared_documents]
        if (
            self.capabilities.change_delivery == "none"
            and documents
            and len(prepared_documents) == len(documents)
            and all(type(document.get("_id")) is str for document in documents)
            and keys == [self._storage_key(document["_id"]) for document in documents]
            and len(set(keys)) == len(keys)
        ):
            now = (
                self._ttl_now()
                if operation_context is None
                else operation_context.expressions.now.replace(tzinfo=datetime.UTC)
            )
            with self._lock:
                conn = self._require_connection(context)
                with (
                    self._bind_connection(conn),
                    sqlite_write_scope(
                        conn,
                        begin_write=lambda current: self._begin_write(current, context),
                        commit_write=lambda current: self._commit_write(current, context),
                        rollback_write=lambda current: self._rollback_write(current, context),
                    ),
                ):
                    written = rows_or_none(
                        self,
                        conn,
                        db_name,
                        coll_name,
                        documents,
                        prepared_documents,
                        snapshot_indexes=snapshot_indexes,
                        bypass=bypass_document_validation,
                        snapshot_options=snapshot_options,
                        context=context,
                        now=now,
                    )
            if written:
                return tuple(InsertOutcome(applied=True, document=document) for document in documents)
        return original(
            self,
            db_name,
            coll_name,
            documents,
            prepared_documents,
            snapshot_indexes,
            context=context,
            bypass_document_validation=bypass_document_validation,
            snapshot_options=snapshot_options,
            operation_context=operation_context,
        )

    engine_cls._insert_documents_sync = _insert_documents_sync  # type: ignore[method-assign]
