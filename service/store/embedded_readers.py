"""Embedded store (mongoeco 4.11.0, SQLite engine): reads never wait for a writer.

The SQLite engine runs every command on one connection, and while a session holds a
transaction on it, every other session's command is refused ("active transaction bound
to another session"; ``embedded_transactions`` makes it wait). A transaction spans the
round trips of a whole unit of work, so a token check, a pull or a subscription snapshot
waited behind every push, and under load behind a queue of them.

MongoDB serves reads outside a transaction from the last committed state, whatever
transactions are open. So does this patch: a read command (``find``, ``getMore``,
``count``, ``distinct``, an ``aggregate`` that writes nothing) sent outside a transaction
runs on a read-only connection of its own thread (``PRAGMA query_only``). The engine
opens its file in WAL mode, so such a connection reads the last committed state while
the write connection holds a transaction: it neither waits for nor sees uncommitted
writes. Writes, and every command of a transaction, keep the write connection.

What a read would otherwise do to the write connection's state:

- A read purges expired TTL documents first (a write): not on a read connection; writes
  purge as before.
- The engine caches facts about a collection's rows ("no document holds an array at
  ``f``"), cleared by each write. A read connection does not see a transaction's
  uncommitted writes, so while a transaction is open it keeps what it learns to itself.

A read of more than one document (``find`` without ``limit: 1``, ``aggregate``) gets a
"dedicated reader": a connection of its own, holding its snapshot while its cursor pauses,
which the engine opened for each read and closed after it (sqlite_reader.py:164 and 289):
connecting, two PRAGMAs, parsing the schema (~100 tables and indexes) and reloading the
index catalog, ~1-2 ms of the store's CPU, under the engine's lock, ~5 times a push while
anyone follows ``syncStatus``. Such connections are kept instead: closing one ends its
snapshot (rollback) and keeps it for the next read (``KEPT`` at most). They are read-only
(``PRAGMA query_only``); the catalog each caches is checked against the file at each use,
as on any engine connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import ChainMap
from contextvars import ContextVar
from typing import Any

from service.store.embedded_pin import apply_once

READS = frozenset({"find", "getMore", "count", "distinct", "aggregate"})
KEPT = 8  # idle dedicated readers kept per engine (the engine runs at most 6 jobs at once)
_reading: ContextVar[bool] = ContextVar("fieldsync_reading", default=False)
_connections = threading.local()  # per thread: .by_engine {id(engine): read connection}
_kept_lock = threading.Lock()
_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def is_read(command_name: str, body: dict[str, Any]) -> bool:
    """A command that reads only, sent outside a transaction."""
    if command_name not in READS or body.get("autocommit") is False:
        return False
    return not any("$out" in stage or "$merge" in stage for stage in body.get("pipeline", ()))


def read_connection(engine: Any) -> sqlite3.Connection:
    """This thread's read-only connection to the engine's file."""
    by_engine = _connections.__dict__.setdefault("by_engine", {})
    conn = by_engine.get(id(engine))
    if conn is None:
        conn = by_engine[id(engine)] = engine._create_sqlite_connection()
        conn.execute("PRAGMA query_only = 1")
    return conn


def keep(conn: sqlite3.Connection, kept: list[sqlite3.Connection]) -> bool:
    """Put a dedicated reader back for the next read (its snapshot ended); False when enough are kept."""
    if conn.in_transaction:
        conn.rollback()
    with _kept_lock:
        if len(kept) >= KEPT:
            return False
        kept.append(conn)
        return True


def _patch() -> None:
    from mongoeco.engines import sqlite
    from mongoeco.engines._sqlite_connection import SQLiteConnection
    from mongoeco.engines._sqlite_session_runtime import SQLiteSessionRuntime
    from mongoeco.wire.executor import WireCommandExecutor

    engine_cls = sqlite.SQLiteEngine
    original_execute = WireCommandExecutor.execute_prepared
    original_require = SQLiteSessionRuntime.require_connection
    original_purge = engine_cls._purge_expired_documents_sync
    original_create = engine_cls._create_sqlite_connection
    original_close = SQLiteConnection.close
    features = engine_cls.__dict__["_collection_features_cache"]

    async def execute_prepared(self: Any, context: Any) -> dict[str, Any]:
        in_transaction = context.session is not None and context.session.transaction_active
        if in_transaction or not is_read(context.command_name, context.raw_body):
            return await original_execute(self, context)
        token = _reading.set(True)
        try:
            return await original_execute(self, context)
        finally:
            _reading.reset(token)

    def require_connection(self: Any, context: Any = None) -> sqlite3.Connection:
        engine = self._engine
        if (
            not _reading.get()
            or engine._path == ":memory:"
            or getattr(engine._thread_local, "connection", None) is not None
            or self.session_owns_transaction(context)
        ):
            return original_require(self, context)
        if engine._connection is None:
            raise RuntimeError("SQLiteEngine is not connected")
        self.ensure_session_can_use_engine(context)
        return read_connection(engine)

    def _purge_expired_documents_sync(self: Any, conn: Any, *args: Any, **kwargs: Any) -> int:
        if conn is _connections.__dict__.get("by_engine", {}).get(id(self)):
            return 0
        return original_purge(self, conn, *args, **kwargs)

    def _create_sqlite_connection(self: Any) -> sqlite3.Connection:
        if not _reading.get() or self._path == ":memory:":
            return original_create(self)
        kept = self.__dict__.setdefault("_fieldsync_kept_readers", [])
        with _kept_lock:
            if kept:
                return kept.pop()
        conn = original_create(self)
        conn.execute("PRAGMA query_only = 1")
        conn.fieldsync_kept = kept  # type: ignore[attr-defined]
        return conn

    def close(self: Any) -> None:
        kept = self.__dict__.get("fieldsync_kept")
        if kept is None or not keep(self, kept):
            original_close(self)

    def collection_features_cache(self: Any) -> Any:
        cache = features.fget(self)
        if _reading.get() and self._transaction_owner_session_id is not None:
            return ChainMap({}, cache)  # read through, keep what this read learns to itself
        return cache

    _ORIGINALS.update(execute=original_execute, require=original_require, purge=original_purge)
    _ORIGINALS.update(create=original_create, close=original_close)
    WireCommandExecutor.execute_prepared = execute_prepared  # type: ignore[method-assign]
    SQLiteSessionRuntime.require_connection = require_connection  # type: ignore[method-assign]
    engine_cls._purge_expired_documents_sync = _purge_expired_documents_sync  # type: ignore[method-assign]
    engine_cls._create_sqlite_connection = _create_sqlite_connection  # type: ignore[method-assign]
    SQLiteConnection.close = close  # type: ignore[method-assign]
    engine_cls._collection_features_cache = property(collection_features_cache)  # type: ignore[assignment]
