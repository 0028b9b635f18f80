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
- ``find``, ``find_one_and_update`` and ``bulk_write`` send a push's hot commands on it (how:
  below), with PyMongo's error handling (the checkout's, for a pinned connection: what a failure
  tells the topology, the transient-transaction label) and the client's ``timeoutMS``. Without a
  held connection (no session, no transaction, a sharded cluster or load balancer, which PyMongo
  pins itself, another PyMongo version) they are the collection API's own calls.
- ``bulk_write_all`` sends a unit of work's writes to several collections (``write_batch``) as one
  ``bulkWrite`` command where the store takes it (MongoDB 8.0 and later; the embedded store,
  ``embedded_bulk_write``), each group answered as its own bulk write would be; elsewhere, one bulk
  write per collection.
- ``commit`` sends the transaction's ``commitTransaction`` on it, with ``commit_transaction``'s
  handling of its errors but not its retry (a unit of work resolves a lost answer from its
  marker), and is ``commit_transaction`` itself whenever it cannot.

On a held connection a command is sent as ``AsyncConnection.command`` sends it, without its
telemetry, its re-authentication retry (OIDC's) and its checks of arguments these never pass
(~20-30 µs of client CPU a command, ~50 µs an insert of 50): the session's fields (``lsid``,
``txnNumber``, ``startTransaction``...), the cluster time and the operation's ``maxTimeMS`` are
added by PyMongo's own calls, the reply goes through the client's response processing and
PyMongo's checks, and a failure of the connection closes it as PyMongo does. A bulk write of
``InsertOne`` only (each with an ``_id``) or of plain ``ReplaceOne`` only goes as one ``insert`` or
``update`` command, without the bulk API's objects, and answers as the bulk API does. A command
larger than the server takes, and every command whenever command monitoring or PyMongo's command
log is on or the client encrypts, compresses or declares a server API, goes through
``AsyncConnection.command`` and the bulk API as before.

This leans on PyMongo 4.20.0's internals like ``pymongo_io``, and only on that version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from typing import Any
from weakref import WeakKeyDictionary

import pymongo
from bson.codec_options import CodecOptions
from pymongo import InsertOne, ReadPreference, ReplaceOne, ReturnDocument, UpdateOne
from pymongo._telemetry import _generate_op_id_or_none
from pymongo.asynchronous.bulk import _AsyncBulk
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor_base import _ConnectionManager
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.asynchronous.mongo_client import AsyncMongoClient
from pymongo.asynchronous.pool import AsyncConnection
from pymongo.asynchronous.server import Server
from pymongo.bulk_shared import _raise_bulk_write_error
from pymongo.client_session_shared import _UNKNOWN_COMMIT_ERROR_CODES, _reraise_with_unknown_commit, _TxnState
from pymongo.common import validate_ok_for_replace, validate_ok_for_update
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    NotPrimaryError,
    OperationFailure,
    WTimeoutError,
)
from pymongo.helpers_shared import _check_command_response
from pymongo.logger import _COMMAND_LOGGER, _is_debug_enabled
from pymongo.message import _COMMAND_OVERHEAD, _op_msg
from pymongo.results import BulkWriteResult
from pymongo.server_selectors import writable_server_selector
from pymongo.server_type import SERVER_TYPE
from pymongo.write_concern import WriteConcern

from service.store.pymongo_io import PINNED_VERSION, receive_message

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


async def commit(session: AsyncClientSession) -> None:
    """``session.commit_transaction()``, its ``commitTransaction`` sent on the connection the transaction
    holds, with PyMongo's handling of its errors (a lost answer is labelled an unknown commit result), and
    no retry: a unit of work finds out from its marker whether a commit whose answer was lost went through."""
    client = session.client
    transaction = session._transaction
    options = transaction.opts
    pinned = session._pinned_connection
    if (
        _HELD.get(session) is None
        or pinned is None
        or not _lean(pinned, client)
        or transaction.state is not _TxnState.IN_PROGRESS
        or options is None
        or options.max_commit_time_ms
        or (options.write_concern and options.write_concern.document)
        or transaction.recovery_token
    ):
        await session.commit_transaction()
        return
    try:
        async with _held(client, session) as conn:
            assert conn is not None
            transaction.attempt += 1
            admin = client.admin
            command = {"commitTransaction": 1}
            await _lean_command(conn, admin, admin.codec_options, session, command, parse_write_concern_error=True)
    except ConnectionFailure as error:
        error._remove_error_label("TransientTransactionError")
        _reraise_with_unknown_commit(error)
    except WTimeoutError as error:
        _reraise_with_unknown_commit(error)
    except OperationFailure as error:
        if error.code not in _UNKNOWN_COMMIT_ERROR_CODES:
            raise
        _reraise_with_unknown_commit(error)
    finally:
        transaction.state = _TxnState.COMMITTED


async def find(
    collection: AsyncCollection[Document],
    query: Mapping[str, Any],
    session: AsyncClientSession | None,
    projection: Mapping[str, Any] | None = None,
) -> list[Document]:
    """Every document matching ``query`` (the fields of ``projection``, if given)."""
    async with _held(collection.database.client, session) as conn:
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
    async with _held(collection.database.client, session) as conn:
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
    async with _held(collection.database.client, session) as conn:
        if conn is None:
            return await collection.bulk_write(requests, ordered=ordered, session=session)
        written = await _write(conn, collection, session, requests, ordered)
        if written is not None:
            return written
        bulk = _AsyncBulk(collection, ordered, None)
        for request in requests:
            request._add_to_bulk(bulk)
        result = _bulk_result()
        runs = bulk.gen_ordered() if ordered else bulk.gen_unordered()
        op_id = _generate_op_id_or_none(collection.database.client._event_listeners)
        await bulk._execute_command(runs, WriteConcern(), session, conn, op_id, False, result)
    if result["writeErrors"] or result["writeConcernErrors"]:
        _raise_bulk_write_error(result)
    return BulkWriteResult(result, True)


async def bulk_write_all(
    groups: Sequence[tuple[AsyncCollection[Document], Sequence[Any], bool]],
    session: AsyncClientSession | None,
    *,
    store_takes_it: bool,
) -> list[BulkWriteResult]:
    """Each (collection, requests, ordered) group's ``bulk_write``, in order: the same results, and a group's
    ``BulkWriteError`` raised as a ``GroupWriteError`` naming the group.

    On a held connection, when the store takes MongoDB 8.0's ``bulkWrite`` (``store_takes_it``: the embedded
    store, ``embedded_bulk_write``; or a server of wire version 25 or later) and every request is an
    ``InsertOne`` with an ``_id``, a plain ``ReplaceOne`` or a plain ``UpdateOne``, all go as one ordered
    ``bulkWrite`` command: one round trip instead of one a group. Ordered, the first error ends it, which
    in a transaction that error aborts anyway changes nothing but which later errors are reported."""
    if not groups:
        return []
    async with _held(groups[0][0].database.client, session) as conn:
        if conn is not None and (store_takes_it or conn.max_wire_version >= 25):
            written = await _bulk_write_command(conn, groups, session)
            if written is not None:
                return written
    results = []
    for position, (collection, requests, ordered) in enumerate(groups):
        try:
            results.append(await bulk_write(collection, requests, session, ordered=ordered))
        except BulkWriteError as error:
            raise GroupWriteError(position, dict(error.details)) from None
    return results


class GroupWriteError(BulkWriteError):
    """One group of a ``bulk_write_all`` failed: ``group`` is its index, the details its own bulk write's."""

    def __init__(self, group: int, details: dict[str, Any]) -> None:
        super().__init__(details)
        self.group = group


def _bulk_write_op(namespace: int, request: Any) -> Document | None:
    """``request`` as an operation of a ``bulkWrite`` command; None for a kind it is not sent as here."""
    if type(request) is InsertOne and type(request._doc) is dict and "_id" in request._doc:
        return {"insert": namespace, "document": request._doc}
    if type(request) not in (ReplaceOne, UpdateOne) or not request._collation is request._hint is request._sort is None:
        return None
    if type(request) is ReplaceOne:
        validate_ok_for_replace(request._doc)
    elif request._array_filters is not None:
        return None
    else:
        validate_ok_for_update(request._doc)
    op = {"update": namespace, "filter": request._filter, "updateMods": request._doc, "multi": False}
    return op if request._upsert is None else {**op, "upsert": request._upsert}


async def _bulk_write_command(
    conn: AsyncConnection,
    groups: Sequence[tuple[AsyncCollection[Document], Sequence[Any], bool]],
    session: AsyncClientSession | None,
) -> list[BulkWriteResult] | None:
    """``groups`` as one ``bulkWrite`` command, answered as each group's bulk write answers (a write error's
    ``op`` is the operation as the command carried it); None, nothing sent, when a request is of another kind
    or the command is larger than the server takes."""
    ops: list[Document] = []
    placed: list[tuple[int, int]] = []  # by operation: its group and its index in the group
    for group, (_, requests, _) in enumerate(groups):
        for index, request in enumerate(requests):
            op = _bulk_write_op(group, request)
            if op is None:
                return None
            ops.append(op)
            placed.append((group, index))
    if not ops:
        return [BulkWriteResult(_bulk_result(), True) for _ in groups]
    admin = groups[0][0].database.client.admin
    namespaces = [{"ns": f"{collection.database.name}.{collection.name}"} for collection, _, _ in groups]
    spec: Document = {"bulkWrite": 1, "ops": ops, "nsInfo": namespaces, "ordered": True, "errorsOnly": False}
    try:
        reply = await _command(conn, admin, session, spec)
    except DocumentTooLarge:
        return None
    if reply is None:
        return None
    results = [_bulk_result() for _ in groups]
    cursor = reply["cursor"]
    answers: list[Document] = cursor["firstBatch"]
    while cursor["id"]:
        more = {"getMore": cursor["id"], "collection": "$cmd.bulkWrite"}
        cursor = (await _command(conn, admin, session, more))["cursor"]
        answers += cursor["nextBatch"]
    for answer in answers:
        group, index = placed[answer["idx"]]
        result, op = results[group], ops[answer["idx"]]
        if answer["ok"] != 1:
            error = {key: value for key, value in answer.items() if key not in ("ok", "idx")}
            result["writeErrors"].append({"index": index, **error, "op": op.get("document", op)})
        elif "insert" in op:
            result["nInserted"] += 1
        else:
            if "upserted" in answer:
                result["upserted"].append({"index": index, "_id": answer["upserted"]["_id"]})
                result["nUpserted"] += 1
            else:
                result["nMatched"] += answer["n"]
            result["nModified"] += answer.get("nModified", 0)
    for group, result in enumerate(results):
        if result["writeErrors"]:
            raise GroupWriteError(group, result)
    return [BulkWriteResult(result, True) for result in results]


@asynccontextmanager
async def _held(
    client: AsyncMongoClient[Any], session: AsyncClientSession | None
) -> AsyncIterator[AsyncConnection | None]:
    """The connection ``session``'s transaction holds, under the client's timeout and PyMongo's handling of
    a checkout's errors; None when it holds none."""
    server = _HELD.get(session) if session is not None and session._pinned_connection is not None else None
    if server is None:
        yield None
        return
    timeout = client.options.timeout
    with pymongo.timeout(timeout) if timeout is not None else nullcontext():
        async with client._checkout(server, session) as conn:
            yield conn


async def _write(
    conn: AsyncConnection,
    collection: AsyncCollection[Document],
    session: AsyncClientSession | None,
    requests: Sequence[Any],
    ordered: bool,
) -> BulkWriteResult | None:
    """``requests`` as one command, answered as the bulk API answers, when they are all ``InsertOne`` of a
    document with an ``_id`` (an ``insert``) or all plain ``ReplaceOne`` (an ``update``), the command is sent
    lean and it fits one message; None, nothing sent, otherwise: the bulk API's to send."""
    if not requests or len(requests) > conn.max_write_batch_size or not _lean(conn, collection.database.client):
        return None
    spec: Document
    if all(type(r) is InsertOne and type(r._doc) is dict and "_id" in r._doc for r in requests):
        ops = [request._doc for request in requests]
        spec = {"insert": collection.name, "ordered": ordered, "documents": ops}
    elif all(type(r) is ReplaceOne and r._collation is r._hint is r._sort is None for r in requests):
        for request in requests:
            validate_ok_for_replace(request._doc)
        ops = [{"q": r._filter, "u": r._doc, **({} if r._upsert is None else {"upsert": r._upsert})} for r in requests]
        spec = {"update": collection.name, "ordered": ordered, "updates": ops}
    else:
        return None
    reply = await _lean_command(conn, collection.database, collection.codec_options, session, spec)
    if reply is None:
        return None
    result = _bulk_result()  # as the bulk API merges one command's reply
    if "insert" in spec:
        result["nInserted"] = reply["n"]
    else:
        result["upserted"] = reply.get("upserted", [])
        result["nUpserted"] = len(result["upserted"])
        result["nMatched"] = reply["n"] - result["nUpserted"]
        result["nModified"] = reply["nModified"]
    result["writeErrors"] = [{**error, "op": ops[error["index"]]} for error in reply.get("writeErrors", ())]
    if "writeConcernError" in reply:
        result["writeConcernErrors"].append(reply["writeConcernError"])
    if result["writeErrors"] or result["writeConcernErrors"]:
        _raise_bulk_write_error(result)
    return BulkWriteResult(result, True)


def _bulk_result() -> dict[str, Any]:
    return {
        "writeErrors": [],
        "writeConcernErrors": [],
        "nInserted": 0,
        "nUpserted": 0,
        "nMatched": 0,
        "nModified": 0,
        "nRemoved": 0,
        "upserted": [],
    }


async def _command(
    conn: AsyncConnection,
    on: AsyncCollection[Document] | AsyncDatabase[Document],
    session: AsyncClientSession | None,
    spec: Document,
) -> Document:
    """``spec`` sent to the database of ``on`` (a collection, or a database), decoded with its codec options."""
    database = on.database if isinstance(on, AsyncCollection) else on
    lean = _lean(conn, database.client)
    if lean and (reply := await _lean_command(conn, database, on.codec_options, session, spec)) is not None:
        return reply
    return await conn.command(
        database.name, spec, codec_options=on.codec_options, session=session, client=database.client
    )


def _lean(conn: AsyncConnection, client: AsyncMongoClient[Any]) -> bool:
    """Whether nothing ``AsyncConnection.command`` does beyond ``_lean_command`` is asked for on ``conn``."""
    listeners = conn.listeners
    return (
        not (listeners is not None and listeners.enabled_for_commands)
        and not _is_debug_enabled(_COMMAND_LOGGER)
        and client._encrypter is None
        and conn.opts.server_api is None
        and conn.compression_context is None
    )


async def _lean_command(
    conn: AsyncConnection,
    database: AsyncDatabase[Document],
    codec_options: CodecOptions[Document],
    session: AsyncClientSession | None,
    spec: Document,
    *,
    parse_write_concern_error: bool = False,
) -> Document | None:
    """``spec``'s reply as ``AsyncConnection.command`` gives it (the same fields added, the same checks and
    errors); None, nothing sent, when its message is larger than the server takes (PyMongo's to refuse)."""
    client = database.client
    if session is not None:
        session._apply_to(spec, False, ReadPreference.PRIMARY, conn)
    client._send_cluster_time(spec, session)
    try:
        conn.apply_timeout(spec)
        request_id, message, size, largest = _op_msg(0, spec, database.name, None, codec_options)
        if size > conn.max_bson_size + _COMMAND_OVERHEAD or largest > conn.max_bson_size:
            return None
        if session is not None and session._starting_transaction:
            session._transaction.set_in_progress()
        await conn.conn.get_conn.write(message)
        reply = await receive_message(conn, request_id, conn.max_message_size)
        answer: Document = reply.unpack_response(codec_options=codec_options)[0]
        await client._process_response(answer, session)
        _check_command_response(answer, conn.max_wire_version, parse_write_concern_error=parse_write_concern_error)
    except (OperationFailure, NotPrimaryError):
        raise
    except BaseException as error:  # as AsyncConnection.command: the connection is closed, the error says why
        await conn._raise_connection_failure(error)
    return answer
