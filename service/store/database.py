"""The MongoDB client, the database handle, and index creation at start-up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from service.store import pymongo_io

INDEX_NOT_FOUND = 27  # MongoDB's code for dropping an index that is not there


class Database(AsyncDatabase):
    """A database whose ``db[name]`` is made once per name: PyMongo builds a new collection object
    (its options resolved, its name checked) at every look-up, and a push looks up ~12."""

    def __init__(self, client: AsyncMongoClient, name: str) -> None:
        super().__init__(client, name)
        self._collections: dict[str, AsyncCollection] = {}

    def __getitem__(self, name: str) -> AsyncCollection:
        collection = self._collections.get(name)
        if collection is None:
            collection = self._collections[name] = super().__getitem__(name)
        return collection


@dataclass
class Store:
    client: AsyncMongoClient
    db: AsyncDatabase
    serialize_transactions: bool  # one transaction at a time from this process (the embedded memory engine)
    takes_bulk_write: bool = False  # whatever its wire version says: the embedded store (embedded_bulk_write)

    async def close(self) -> None:
        await self.client.close()


def connect(
    uri: str,
    database: str,
    *,
    embedded: bool,
    event_listeners: Iterable[object] = (),
    timeout: float | None = None,
    serialize_transactions: bool | None = None,
) -> Store:
    """``timeout``: seconds any one operation may take (PyMongo's ``timeoutMS``), so a wedged store
    fails requests (UNAVAILABLE) instead of holding them forever. ``serialize_transactions`` (default:
    ``embedded``): run this process's transactions one at a time. The embedded memory engine needs it
    (concurrent transactions there all write the sequence and lose to each other at commit); the SQLite
    engine queues transactions itself, first come first served across every instance on it."""
    pymongo_io.apply()  # each store command's reply awaited without two tasks of its own
    client: AsyncMongoClient = AsyncMongoClient(
        uri,
        tz_aware=True,
        event_listeners=list(event_listeners),
        # The embedded store is a local child: if it does not answer in 2 s it is down or restarting.
        serverSelectionTimeoutMS=2_000 if embedded else 10_000,
        timeoutMS=int(timeout * 1000) if timeout else None,
    )
    serialize = embedded if serialize_transactions is None else serialize_transactions
    db = Database(client, database)
    return Store(client=client, db=db, serialize_transactions=serialize, takes_bulk_write=embedded)


async def ensure_indexes(
    store: Store, declared: dict[str, list[IndexModel]], retired: dict[str, list[str]] | None = None
) -> None:
    """Create every declared index (idempotent), and drop the ``retired`` ones (by name: indexes an
    earlier version created that no query reads any more, so each write only paid for them) where
    they still exist; never drops any other."""
    for collection, names in (retired or {}).items():
        present = {index["name"] async for index in await store.db[collection].list_indexes()}
        for name in sorted(present.intersection(names)):
            try:
                await store.db[collection].drop_index(name)
            except OperationFailure as error:
                if error.code != INDEX_NOT_FOUND:  # another instance starting dropped it first
                    raise
    for collection, indexes in declared.items():
        if indexes:
            await store.db[collection].create_indexes(indexes)
