"""Units of work: a callback run in a MongoDB transaction, retried when it must be."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from service.store.database import Store

# The embedded store's words for "another transaction got there first".
_EMBEDDED_CONFLICTS = (
    "already has an active transaction",
    "Write conflict during transaction commit",
    "database is locked",  # SQLite's busy timeout ran out
)


class ConcurrentWrite(Exception):
    """Another writer changed what this unit of work read; run it again."""


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


class UnitOfWork:
    def __init__(self, store: Store, attempts: int = 50) -> None:
        self._store = store
        self._attempts = attempts
        self._lock = asyncio.Lock() if store.serialize_transactions else None

    async def run[T](self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction; on a conflict run it again from the start."""
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
        async with self._store.client.start_session() as session, await session.start_transaction():
            return await work(session)
