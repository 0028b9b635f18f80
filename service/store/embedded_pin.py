"""The mongoeco version the embedded store's patches are written against, and applying one once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PINNED_VERSION = "4.11.0"


def index_on_open(originals: dict[str, Any], create: str) -> None:
    """Patch the SQLite engine to run ``create`` (a ``CREATE INDEX IF NOT EXISTS``) each time it opens its file."""
    from mongoeco.engines import sqlite

    engine_cls = sqlite.SQLiteEngine
    original = originals["connect"] = engine_cls._connect_sync

    def _connect_sync(self: Any) -> None:
        original(self)
        connection = self._connection
        if connection is not None:
            connection.execute(create)
            if connection.in_transaction:
                connection.commit()

    engine_cls._connect_sync = _connect_sync  # type: ignore[method-assign]


def apply_once(originals: dict[str, Any], patch: Callable[[], None]) -> bool:
    """Run ``patch`` (which fills ``originals``) once, on the pinned mongoeco only; False on any other."""
    import mongoeco

    if mongoeco.__version__ != PINNED_VERSION:
        return False
    if not originals:
        patch()
    return True
