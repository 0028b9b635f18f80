"""Embedded store (mongoeco 4.11.0, SQLite engine): a transaction checks once whether another
connection changed the file, not before every index-catalog look-up.

``SQLiteEngine._load_indexes`` (sqlite.py:3540), which every read plan, insert and update
calls, often several times a command, first runs ``refresh_catalog_validity``
(_sqlite_connection.py:27): inside a transaction a ``SELECT`` on ``sqlite_schema`` to pin the
read snapshot, then ``PRAGMA main.data_version``, to drop the connection's cached catalogs if
another connection has committed. Two statements each time: ~3% of the store's CPU with 50
devices pushing. Inside one transaction the answer cannot change after the first check: the
snapshot it pinned stays the transaction's until it ends, and while it writes it holds the
file's write lock. So the connection checks once per transaction, and again after its
``commit`` or ``rollback``; outside a transaction it checks every time, as before.
"""

from __future__ import annotations

from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}
_CHECKED = "_fieldsync_checked_in_transaction"


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.engines._sqlite_connection import SQLiteConnection

    original_refresh = _ORIGINALS["refresh"] = SQLiteConnection.refresh_catalog_validity
    original_commit = _ORIGINALS["commit"] = SQLiteConnection.commit
    original_rollback = _ORIGINALS["rollback"] = SQLiteConnection.rollback

    def refresh_catalog_validity(self: Any) -> None:
        if self.in_transaction and getattr(self, _CHECKED, False):
            return
        original_refresh(self)
        setattr(self, _CHECKED, self.in_transaction)

    def commit(self: Any) -> None:
        setattr(self, _CHECKED, False)
        original_commit(self)

    def rollback(self: Any) -> None:
        setattr(self, _CHECKED, False)
        original_rollback(self)

    SQLiteConnection.refresh_catalog_validity = refresh_catalog_validity  # type: ignore[method-assign]
    SQLiteConnection.commit = commit  # type: ignore[method-assign]
    SQLiteConnection.rollback = rollback  # type: ignore[method-assign]
