"""Embedded store (mongoeco 4.11.0, SQLite engine): opening a store file does not rebuild every
index entry of every document it holds.

Each time the engine opens its file (``SQLiteEngine._connect_sync``), it deletes the
``scalar_index_entries`` of every collection with an index and rebuilds them by reading and
decoding every stored document (``backfill_scalar_indexes_sync``): a start-up, and a restart
after a crash, took time in proportion to the data (7.5 s at 30k documents against 2.9 s
empty, ~60 % of it this rebuild), and a store of 1M documents would have been unavailable
for minutes each time. The rebuild brings entries up to date with what an earlier engine
version wrote; between opens the engine keeps them exact itself (each write rewrites its
document's entries in the write's own transaction, and a new index builds its entries over
the stored documents when it is created).

This patch runs the rebuild once per store file and mongoeco version: it notes it in a
table of its own (``fieldsync_index_backfills``) in the transaction the engine commits after
the rebuild, and skips it on later opens with the same version. Another version rebuilds
again on its first open.
"""

from __future__ import annotations

from typing import Any

from service.store.embedded_pin import PINNED_VERSION, apply_once

TABLE = "fieldsync_index_backfills"
DONE = f"scalar_index_entries/mongoeco-{PINNED_VERSION}"
_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.engines import sqlite

    engine_cls = sqlite.SQLiteEngine
    original = _ORIGINALS["backfill"] = engine_cls._backfill_scalar_indexes_sync

    def _backfill_scalar_indexes_sync(self: Any, conn: Any) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (done TEXT PRIMARY KEY)")
        if conn.execute(f"SELECT 1 FROM {TABLE} WHERE done = ?", (DONE,)).fetchone() is None:
            original(self, conn)
            conn.execute(f"INSERT INTO {TABLE} (done) VALUES (?)", (DONE,))

    engine_cls._backfill_scalar_indexes_sync = _backfill_scalar_indexes_sync  # type: ignore[method-assign]
