"""Embedded store (mongoeco 4.11.0, SQLite engine): writing a document of a collection with a
TTL index does not scan that collection's TTL entries.

The engine keeps one row per document and TTL index in ``ttl_index_entries``, keyed
``(collection_id, index_name, storage_key)``, and indexed ``(collection_id,
expires_at_epoch_ms, ...)`` for the purge. Every insert, update and upsert first runs
``DELETE FROM ttl_index_entries WHERE collection_id = ? AND storage_key = ?`` (twice for an
insert: sqlite.py:4088 and 4118), which neither index serves past ``collection_id``: SQLite
reads every TTL entry of the collection. History, sync sessions and commit markers all
have a TTL index, so a push's writes cost O(events stored): 0.8 ms per delete with 10k
events, and growing with them.

This patch adds the index that lookup needs, ``(collection_id, storage_key)``, when the
engine opens its file (``CREATE INDEX IF NOT EXISTS``: built once, kept by the file).
"""

from __future__ import annotations

from typing import Any

from service.store.embedded_pin import apply_once

INDEX = "fieldsync_ttl_entries_by_document"
_CREATE = f"CREATE INDEX IF NOT EXISTS {INDEX} ON ttl_index_entries (collection_id, storage_key)"
_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.engines import sqlite

    engine_cls = sqlite.SQLiteEngine
    original = _ORIGINALS["connect"] = engine_cls._connect_sync

    def _connect_sync(self: Any) -> None:
        original(self)
        connection = self._connection
        if connection is not None:
            connection.execute(_CREATE)
            if connection.in_transaction:
                connection.commit()

    engine_cls._connect_sync = _connect_sync  # type: ignore[method-assign]
