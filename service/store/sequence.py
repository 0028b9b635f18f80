"""The global change sequence: pull cursors and history pages are positions in it.

Numbers are taken inside the writing transaction. On MongoDB the counter
document is then held until commit, so transactions that take numbers commit
in number order and a reader never sees a later number before an earlier one.
"""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from service.store.database import Store

COLLECTION = "counters"
INDEXES: list = []


async def take(store: Store, session: AsyncClientSession, count: int) -> range:
    """Reserve ``count`` consecutive numbers."""
    counter = await store.db[COLLECTION].find_one_and_update(
        {"_id": "sequence"},
        {"$inc": {"value": max(count, 1)}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert counter is not None  # upserted
    end = counter["value"] + 1
    return range(end - count, end)


async def current(store: Store) -> int:
    counter = await store.db[COLLECTION].find_one({"_id": "sequence"})
    return counter["value"] if counter else 0
