"""Embedded store (mongoeco 4.11.0, SQLite engine): a document written to one collection updates
only that collection's indexes.

Every collection lives in one table, ``documents``, and mongoeco builds each ordered index
as an expression index on that table: ``(db_name, coll_name, type(f), value(f), ...)``,
three ``json_extract`` of the document per field (_sqlite_index_admin.py:226-239, 308).
So every insert, and every update of the ``document`` column, computes the keys of every
collection's indexes, FieldSync's ~40 of them, each ``json_extract`` parsing the JSON
again (SQLite 3.40 keeps no parse). A history event paid ~0.6 ms for that, where its row
alone costs 33 µs; a push of 20 writes some 60 documents.

This patch makes each of these indexes partial: ``WHERE db_name = '<db>' AND coll_name =
'<collection>'``, its own namespace. Rows of other collections skip it without computing
its keys. Every query mongoeco and ``embedded_index_plans`` send on an index names its
namespace as ``db_name = ? AND coll_name = ?``, and SQLite uses a partial index when the
bound values imply its ``WHERE`` (it re-plans a statement when they change), so the same
queries use the same indexes. An index is made partial right after mongoeco creates it (or
renames its collection), and the indexes of an existing file when the engine opens it (in
one transaction each).

A hint is the exception: mongoeco turns it into ``INDEXED BY``, which SQLite resolves before
the values are bound, and refuses for a partial index. The patch keeps the hint's
validation (an unknown index still fails as before) and lets SQLite choose the index.

The entries of single-field indexes (``scalar_index_entries``, written in Python for each
document) share one table the same way: each such index adds an index ``scidx_...`` on
``(collection_id, index_name, type_score, element_key, storage_key)``, all alike, so each
entry went into every one of them (~20; a push of 20 spent ~18 ms writing its ~120 entries).
They become partial too, ``WHERE collection_id = <id> AND index_name = '<name>'``, and since
mongoeco reads through them with ``INDEXED BY``, statements on the engine's connections
name no ``scidx_`` index: SQLite picks the one whose ``WHERE`` the bound values match.

SQLite decides whether a partial index applies from the values bound when the statement runs,
so a statement comparing a bound ``collection_id`` (or namespace) with what those ``WHERE``
clauses name is prepared again at every run (sqlite3.c vdbeUnbind: any new binding of such a
parameter expires the plan). Before every write of a document the engine deletes its entries,
``DELETE FROM scalar_index_entries WHERE collection_id = ? AND storage_key = ?`` (sqlite.py:4079):
~90 µs each time, where the delete itself costs ~5 µs, some 60 times a push. The patch names the
collection id in that statement (one cached statement per collection); ``embedded_index_plans``
names the namespace in its own SQL for the same reason (``namespace_sql``).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}
_PHYSICAL_INDEXES = """
    SELECT i.db_name, i.coll_name, m.name, m.sql FROM indexes AS i
    JOIN sqlite_master AS m ON m.type = 'index' AND m.tbl_name = 'documents' AND m.name = i.physical_name
"""
_SCALAR_INDEXES = """
    SELECT i.db_name, i.coll_name, c.collection_id, i.name, m.name, m.sql FROM indexes AS i
    JOIN sqlite_master AS m
        ON m.type = 'index' AND m.tbl_name = 'scalar_index_entries' AND m.name = i.scalar_physical_name
    LEFT JOIN collections AS c ON c.db_name = i.db_name AND c.coll_name = i.coll_name
"""
_NAMESPACE = " WHERE db_name = "
_ENTRIES_OF = " WHERE collection_id "
_SCALAR_HINT = re.compile(r' INDEXED BY "scidx_[0-9a-f]+"')
_DELETE_TTL_ENTRIES = "DELETE FROM ttl_index_entries WHERE collection_id = ? AND storage_key = ?"


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def make_partial(conn: sqlite3.Connection, namespace: tuple[str, str] | None = None) -> int:
    """Rebuild the physical indexes (of ``namespace``, else all) not yet partial to their own
    namespace or entries (new, or of a renamed collection) as partial ones; how many."""
    current = [
        (db_name, coll_name, name, sql, _NAMESPACE, _where(db_name, coll_name))
        for db_name, coll_name, name, sql in conn.execute(_PHYSICAL_INDEXES).fetchall()
    ] + [
        (db_name, coll_name, name, sql, _ENTRIES_OF, _entries_of(collection_id, index_name))
        for db_name, coll_name, collection_id, index_name, name, sql in conn.execute(_SCALAR_INDEXES).fetchall()
    ]
    rebuilt = [
        (name, f"{sql.split(marker)[0]}{where}")
        for db_name, coll_name, name, sql, marker, where in current
        if (namespace is None or (db_name, coll_name) == namespace) and not sql.endswith(where)
    ]
    if not rebuilt:
        return 0
    own_transaction = not conn.in_transaction
    if own_transaction:
        conn.execute("BEGIN IMMEDIATE")
    try:
        for name, sql in rebuilt:
            conn.execute(f'DROP INDEX "{name}"')  # mongoeco's names: idx_ / scidx_ and hex digits
            conn.execute(sql)
    except BaseException:
        if own_transaction:
            conn.rollback()
        raise
    if own_transaction:
        conn.commit()
    return len(rebuilt)


def namespace_sql(db_name: str, coll_name: str) -> str:
    """The SQL condition naming a collection's rows, as its partial indexes' ``WHERE`` names them."""
    return f"db_name = {_literal(db_name)} AND coll_name = {_literal(coll_name)}"


def _where(db_name: str, coll_name: str) -> str:
    return f" WHERE {namespace_sql(db_name, coll_name)}"


def _entries_of(collection_id: int | None, index_name: str) -> str:
    if not collection_id:  # no id yet, so no entries: an empty index until its first write
        return f"{_ENTRIES_OF}IS NULL"
    return f"{_ENTRIES_OF}= {int(collection_id)} AND index_name = {_literal(index_name)}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _patch() -> None:
    from mongoeco.engines import sqlite
    from mongoeco.engines._sqlite_connection import SQLiteConnection

    engine_cls = sqlite.SQLiteEngine
    original_connect = _ORIGINALS["connect"] = engine_cls._connect_sync
    original_create = _ORIGINALS["create"] = sqlite._sqlite_create_index
    original_select = _ORIGINALS["select"] = sqlite._sqlite_build_select_sql
    original_rename = _ORIGINALS["rename"] = sqlite._sqlite_rename_collection
    original_execute = _ORIGINALS["execute"] = SQLiteConnection.execute
    original_executemany = _ORIGINALS["executemany"] = SQLiteConnection.executemany
    original_lookup = _ORIGINALS["lookup"] = engine_cls._lookup_collection_id
    _ORIGINALS["delete_entries"] = engine_cls._delete_scalar_entries_for_storage_key

    def _connect_sync(self: Any) -> None:
        original_connect(self)
        if self._connection is not None:
            make_partial(self._connection)

    def create_index(conn: sqlite3.Connection, **kwargs: Any) -> str:
        name = original_create(conn, **kwargs)
        make_partial(conn, (kwargs["db_name"], kwargs["coll_name"]))
        return name

    def rename_collection(*, conn: sqlite3.Connection, **kwargs: Any) -> None:
        original_rename(conn=conn, **kwargs)
        make_partial(conn, (kwargs["db_name"], kwargs["new_name"]))

    def _lookup_collection_id(
        self: Any, conn: sqlite3.Connection, db_name: str, coll_name: str, *, create: bool = False
    ) -> int | None:
        known = (db_name, coll_name) in self._collection_id_cache
        collection_id = original_lookup(self, conn, db_name, coll_name, create=create)
        if create and not known and collection_id is not None:
            with contextlib.suppress(sqlite3.OperationalError):  # busy table: stays full, still right
                make_partial(conn, (db_name, coll_name))  # its entries' indexes need its id (a write's first)
        return collection_id

    def _delete_scalar_entries_for_storage_key(
        self: Any, conn: sqlite3.Connection, db_name: str, coll_name: str, storage_key: str
    ) -> None:
        collection_id = self._lookup_collection_id(conn, db_name, coll_name)
        if collection_id is None:
            return
        of_collection = f"collection_id = {int(collection_id)}"  # its scidx_ WHERE, decided once per statement
        conn.execute(f"DELETE FROM scalar_index_entries WHERE {of_collection} AND storage_key = ?", (storage_key,))
        conn.execute(_DELETE_TTL_ENTRIES, (collection_id, storage_key))

    def build_select_sql(**kwargs: Any) -> tuple[str, list[object]]:
        resolve = kwargs["resolve_hint_index"]

        def resolve_without_physical_index(*args: Any) -> object | None:
            index = resolve(*args)  # raises as before for a hint naming no usable index
            return None if index is None else {**index, "physical_name": None}  # no INDEXED BY

        return original_select(**{**kwargs, "resolve_hint_index": resolve_without_physical_index})

    def execute(self: sqlite3.Connection, sql: str, *args: Any) -> sqlite3.Cursor:
        return original_execute(self, _SCALAR_HINT.sub("", sql) if "INDEXED BY" in sql else sql, *args)

    def executemany(self: sqlite3.Connection, sql: str, *args: Any) -> sqlite3.Cursor:
        return original_executemany(self, _SCALAR_HINT.sub("", sql) if "INDEXED BY" in sql else sql, *args)

    engine_cls._connect_sync = _connect_sync  # type: ignore[method-assign]
    engine_cls._lookup_collection_id = _lookup_collection_id  # type: ignore[method-assign]
    engine_cls._delete_scalar_entries_for_storage_key = _delete_scalar_entries_for_storage_key  # type: ignore[method-assign]
    SQLiteConnection.execute = execute  # type: ignore[method-assign,assignment]
    SQLiteConnection.executemany = executemany  # type: ignore[method-assign,assignment]
    sqlite._sqlite_create_index = create_index
    sqlite._sqlite_build_select_sql = build_select_sql
    sqlite._sqlite_rename_collection = rename_collection
