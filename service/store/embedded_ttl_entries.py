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

from service.store.embedded_pin import apply_once, index_on_open

INDEX = "fieldsync_ttl_entries_by_document"
_CREATE = f"CREATE INDEX IF NOT EXISTS {INDEX} ON ttl_index_entries (collection_id, storage_key)"
_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    index_on_open(_ORIGINALS, _CREATE)
