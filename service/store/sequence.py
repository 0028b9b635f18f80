"""The global change sequence: pull cursors and history pages are positions in it.

Numbers are taken inside the writing transaction. On MongoDB the counter
document is then held until commit, so transactions that take numbers commit
in number order and a reader never sees a later number before an earlier one.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from service.store import held_connection
from service.store.database import Store

COLLECTION = "counters"
KEY = "sequence"  # the counter document's _id
INDEXES: list = []


async def take(store: Store, session: AsyncClientSession, count: int) -> range:
    """Reserve ``count`` consecutive numbers."""
    counter = await held_connection.find_one_and_update(
        store.db[COLLECTION],
        {"_id": KEY},
        {"$inc": {"value": max(count, 1)}},
        session,
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert counter is not None  # upserted
    end = counter["value"] + 1
    return range(end - count, end)


async def current(store: Store) -> int:
    counter = await store.db[COLLECTION].find_one({"_id": KEY})
    return counter["value"] if counter else 0


def head_taken(command: dict[str, Any], reply: dict[str, Any]) -> int | None:
    """The head a ``take`` moved the sequence to, read off its command and reply (as a wire server sees
    them); None for any other command."""
    if command.get("findAndModify") != COLLECTION or reply.get("ok") != 1:
        return None
    counter = reply.get("value")
    if not isinstance(counter, dict) or counter.get("_id") != KEY:
        return None
    return int(counter["value"])
