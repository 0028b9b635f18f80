"""A transaction's store commands sent on the one connection it holds.

PyMongo's collection API spends ~40 % of a store command's client CPU above the connection:
a server selection and a pool checkout for every command, the retry wrapper, cursor and
bulk objects. In a transaction of ten commands on the embedded store, a command cost ~410-600
µs of client CPU that way and ~250-370 µs sent on a connection held for the transaction (12
alternated rounds on a busy machine: 0.47-0.77x). A transaction's commands go one after
another anyway, and PyMongo retries none of them inside it, so:

- ``hold``: a unit of work checks out one connection when its transaction starts and pins it
  to the session, as PyMongo pins one for a load balancer. The pool keeps it out until the
  session ends; any command of the transaction through the collection API reuses it (PyMongo
  looks for a pinned connection before the pool).
- ``find``, ``find_one_and_update`` and ``bulk_write`` send a push's hot commands on it with
  PyMongo's own command, batching, command monitoring, error handling (the checkout's, for a
  pinned connection: what a failure tells the topology, the transient-transaction label) and
  the client's ``timeoutMS``. Without a held connection (no session, no transaction, a
  sharded cluster or load balancer, which PyMongo pins itself, another PyMongo version) they
  are the collection API's own calls.

This leans on PyMongo 4.20.0's internals like ``pymongo_io``, and only on that version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from typing import Any
from weakref import WeakKeyDictionary

import pymongo
from pymongo import ReturnDocument
from pymongo._telemetry import _generate_op_id_or_none
from pymongo.asynchronous.bulk import _AsyncBulk
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor_base import _ConnectionManager
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.asynchronous.pool import AsyncConnection
from pymongo.asynchronous.server import Server
from pymongo.bulk_shared import _raise_bulk_write_error
from pymongo.results import BulkWriteResult
from pymongo.server_selectors import writable_server_selector
from pymongo.server_type import SERVER_TYPE
from pymongo.write_concern import WriteConcern

from service.store.pymongo_io import PINNED_VERSION

Document = dict[str, Any]

_HELD: WeakKeyDictionary[AsyncClientSession, Server] = WeakKeyDictionary()  # the server of each held connection
_PINNED_BY_PYMONGO = (SERVER_TYPE.Mongos, SERVER_TYPE.LoadBalancer)


async def hold(client: AsyncMongoClient, session: AsyncClientSession) -> None:
    """Check out one connection for the transaction ``session`` has just started, pinned to it until it ends."""
    if pymongo.__version__ != PINNED_VERSION:
        return
    server = await client._select_server(writable_server_selector, session, "holdConnection")
    if server.description.server_type in _PINNED_BY_PYMONGO:
        return
    async with client._checkout(server, session) as conn:
        conn.pin_txn()  # the checkout's end leaves a connection pinned to a transaction out of the pool
        session._transaction.conn_mgr = _ConnectionManager(conn, False)  # checked in when the session ends
        session._transaction.pinned_address = server.description.address
    _HELD[session] = server


async def find(
    collection: AsyncCollection[Document],
    query: Mapping[str, Any],
    session: AsyncClientSession | None,
    projection: Mapping[str, Any] | None = None,
) -> list[Document]:
    """Every document matching ``query`` (the fields of ``projection``, if given)."""
    async with _held(collection, session) as conn:
        if conn is None:
            return await collection.find(query, projection, session=session).to_list()
        command = {"find": collection.name, "filter": query}
        if projection is not None:
            command["projection"] = projection
        cursor = (await _command(conn, collection, session, command))["cursor"]
        documents: list[Document] = cursor["firstBatch"]
        while cursor["id"]:
            more = {"getMore": cursor["id"], "collection": collection.name}
            cursor = (await _command(conn, collection, session, more))["cursor"]
            documents += cursor["nextBatch"]
        return documents


async def find_one_and_update(
    collection: AsyncCollection[Document],
    query: Mapping[str, Any],
    update: Mapping[str, Any],
    session: AsyncClientSession | None,
    *,
    upsert: bool = False,
    return_document: bool = ReturnDocument.BEFORE,
) -> Document | None:
    """The document matching ``query`` as it was before ``update`` (or after, ``ReturnDocument.AFTER``)."""
    async with _held(collection, session) as conn:
        if conn is None:
            return await collection.find_one_and_update(
                query, update, upsert=upsert, return_document=return_document, session=session
            )
        command = {"findAndModify": collection.name, "query": query, "new": return_document, "update": update}
        if upsert:
            command["upsert"] = True
        reply = await _command(conn, collection, session, command)
        return reply.get("value")


async def bulk_write(
    collection: AsyncCollection[Document],
    requests: Sequence[Any],
    session: AsyncClientSession | None,
    *,
    ordered: bool,
) -> BulkWriteResult:
    """``collection.bulk_write(requests)``: the same commands, batches and ``BulkWriteError``."""
    async with _held(collection, session) as conn:
        if conn is None:
            return await collection.bulk_write(requests, ordered=ordered, session=session)
        bulk = _AsyncBulk(collection, ordered, None)
        for request in requests:
            request._add_to_bulk(bulk)
        result: dict[str, Any] = {
            "writeErrors": [],
            "writeConcernErrors": [],
            "nInserted": 0,
            "nUpserted": 0,
            "nMatched": 0,
            "nModified": 0,
            "nRemoved": 0,
            "upserted": [],
        }
        runs = bulk.gen_ordered() if ordered else bulk.gen_unordered()
        op_id = _generate_op_id_or_none(collection.database.client._event_listeners)
        await bulk._execute_command(runs, WriteConcern(), session, conn, op_id, False, result)
    if result["writeErrors"] or result["writeConcernErrors"]:
        _raise_bulk_write_error(result)
    return BulkWriteResult(result, True)


@asynccontextmanager
async def _held(
    collection: AsyncCollection[Document], session: AsyncClientSession | None
) -> AsyncIterator[AsyncConnection | None]:
    """The connection ``session``'s transaction holds, under the client's timeout and PyMongo's handling of
    a checkout's errors; None when it holds none."""
    server = _HELD.get(session) if session is not None and session._pinned_connection is not None else None
    if server is None:
        yield None
        return
    client = collection.database.client
    timeout = client.options.timeout
    with pymongo.timeout(timeout) if timeout is not None else nullcontext():
        async with client._checkout(server, session) as conn:
            yield conn


async def _command(
    conn: AsyncConnection, collection: AsyncCollection[Document], session: AsyncClientSession | None, spec: Document
) -> Document:
    database = collection.database
    return await conn.command(
        database.name, spec, codec_options=collection.codec_options, session=session, client=database.client
    )
