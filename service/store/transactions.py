"""Units of work: a callback run in a MongoDB transaction, retried when it must be.

A commit whose result is unknown (the connection dropped, a failover, the
answer lost after the commit went through) is resolved by reading what
committed, never by running the work again: each unit of work leaves a marker
in its transaction, so the marker is there exactly when the work committed.
Only a unit of work that did not commit runs again, from the start.

The marker is a document of its own in ``commits``, unless the work names one of
its own writes as its marker (``marked_by``): a push chunk or a status report is
marked by its own last history event, which it writes anyway, and saves the store a command.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from weakref import WeakKeyDictionary

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from service.store import held_connection
from service.store.database import Store

COLLECTION = "commits"  # one marker per committed unit of work, kept a day
INDEXES = [IndexModel([("at", ASCENDING)], name="expiry", expireAfterSeconds=86_400)]

# The embedded store's words for "another transaction got there first".
_EMBEDDED_CONFLICTS = (
    "already has an active transaction",
    "Write conflict during transaction commit",
    "database is locked",  # SQLite's busy timeout ran out
)

Commit = Callable[[AsyncClientSession], Awaitable[None]]
Marker = tuple[str, dict[str, object]]  # a collection, and a filter that matches exactly when the work committed
DUPLICATE_KEY = 11000  # the store's code for a write that met a unique key already there


class ConcurrentWrite(Exception):
    """Another writer changed what this unit of work read; run it again. ``collection``: where it was met."""

    def __init__(self, what: str, *, collection: str | None = None) -> None:
        super().__init__(what)
        self.collection = collection


class CommitUnknown(Exception):
    """A commit's answer was lost and the store could not say whether it committed (raised from the cause)."""


def _retryable(error: PyMongoError) -> bool:
    if isinstance(error, ConnectionFailure):
        return True
    if isinstance(error, OperationFailure):
        return (
            error.has_error_label("TransientTransactionError")
            or error.has_error_label("UnknownTransactionCommitResult")
            or error.code == 112  # WriteConflict
            or any(words in str(error) for words in _EMBEDDED_CONFLICTS)
        )
    return False


async def _commit(session: AsyncClientSession) -> None:
    await held_connection.commit(session)


class UnitOfWork:
    def __init__(self, store: Store, attempts: int = 50, *, commit: Commit = _commit) -> None:
        """``commit`` commits a session's transaction (a test passes one that loses the answer)."""
        self._store = store
        self._attempts = attempts
        self._commit = commit
        self._lock = asyncio.Lock() if store.serialize_transactions else None
        self._marked: WeakKeyDictionary[AsyncClientSession, Marker] = WeakKeyDictionary()  # the work's own marker
        self._on_commit: WeakKeyDictionary[AsyncClientSession, list[Callable[[], None]]] = WeakKeyDictionary()

    def marked_by(self, session: AsyncClientSession, collection: str, written: dict[str, object]) -> None:
        """The work running in ``session`` wrote a document matching ``written`` in ``collection``, which
        exists exactly when this transaction committed: it marks the commit, and no marker is written."""
        self._marked[session] = (collection, written)

    def after_commit(self, session: AsyncClientSession, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transaction running in ``session`` has committed (never if it does not)."""
        self._on_commit.setdefault(session, []).append(callback)

    async def run[T](self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction and commit it once; on a conflict run it again from the start."""
        for attempt in range(self._attempts):
            try:
                if self._lock is None:
                    return await self._once(work)
                async with self._lock:
                    return await self._once(work)
            except (ConcurrentWrite, PyMongoError) as error:
                if isinstance(error, PyMongoError) and not _retryable(error):
                    raise
                if attempt == self._attempts - 1:
                    raise
                await asyncio.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
        raise AssertionError("unreachable")

    async def _once[T](self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        async with self._store.client.start_session() as session:
            await session.start_transaction()
            try:
                await held_connection.hold(self._store.client, session)
                result = await work(session)
                marker = self._marked.pop(session, None) or await self._mark(session)
            except BaseException:
                self._on_commit.pop(session, None)
                if session.in_transaction:
                    await session.abort_transaction()
                raise
            callbacks = self._on_commit.pop(session, [])
            try:
                await self._commit(session)
            except PyMongoError:
                if not await self._committed(marker):
                    raise
            for callback in callbacks:  # committed (or its answer was lost, not the commit)
                callback()
            return result

    async def _mark(self, session: AsyncClientSession) -> Marker:
        marker = uuid.uuid4().hex
        await self._store.db[COLLECTION].insert_one({"_id": marker, "at": datetime.now(UTC)}, session=session)
        return COLLECTION, {"_id": marker}

    async def _committed(self, marker: Marker) -> bool:
        """Whether the unit of work that left ``marker`` committed; raises when the store cannot say."""
        collection, written = marker
        for attempt in range(5):
            try:
                return await self._store.db[collection].find_one(written, {"_id": 1}) is not None
            except ConnectionFailure as error:
                if attempt == 4:
                    raise CommitUnknown("the store did not say whether a commit went through") from error
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")
