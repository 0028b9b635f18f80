"""The global change sequence: pull cursors and history pages are positions in it.

Numbers are taken inside the writing transaction. On MongoDB the counter
document is then held until commit, so transactions that take numbers commit
in number order and a reader never sees a later number before an earlier one.

The counter document also counts the revocations written (``revocations``: tokens,
devices), raised after each is written: every command that takes numbers reads it too,
so a push confirms in its own transaction, and a pull with its read of the head, that
nothing was revoked since its token was last checked (``revocations_seen``), with no read
of its own.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.ports import RevokedSince
from service.store import held_connection
from service.store.database import Store

COLLECTION = "counters"
KEY = "sequence"  # the counter document's _id
INDEXES: list = []


async def take(store: Store, session: AsyncClientSession, count: int, *, revocations_seen: int | None = None) -> range:
    """Reserve ``count`` consecutive numbers. ``revocations_seen``: the revocations counted when the
    caller's token was last checked; RevokedSince (the transaction must not commit) when there are more."""
    counter = await held_connection.find_one_and_update(
        store.db[COLLECTION],
        {"_id": KEY},
        {"$inc": {"value": max(count, 1)}},
        session,
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert counter is not None  # upserted
    _confirm(counter, revocations_seen)
    end = counter["value"] + 1
    return range(end - count, end)


async def current(store: Store, *, revocations_seen: int | None = None) -> int:
    """The head: the last number taken. ``revocations_seen``: as for ``take``."""
    counter = await store.db[COLLECTION].find_one({"_id": KEY})
    _confirm(counter, revocations_seen)
    return counter.get("value", 0) if counter else 0


def _confirm(counter: dict[str, Any] | None, revocations_seen: int | None) -> None:
    if revocations_seen is not None and (counter or {}).get("revocations", 0) != revocations_seen:
        raise RevokedSince("a token or device was revoked since the caller's token was checked")


async def revocations(store: Store) -> int:
    """How many revocations have been written (it only goes up)."""
    counter = await store.db[COLLECTION].find_one({"_id": KEY}, {"revocations": 1})
    return counter.get("revocations", 0) if counter else 0


async def count_revocation(store: Store) -> None:
    """After a revocation is written (never before: a reader between them would keep the old answer)."""
    await store.db[COLLECTION].update_one({"_id": KEY}, {"$inc": {"revocations": 1}}, upsert=True)


def head_taken(command: dict[str, Any], reply: dict[str, Any]) -> int | None:
    """The head a ``take`` moved the sequence to, read off its command and reply (as a wire server sees
    them); None for any other command."""
    if command.get("findAndModify") != COLLECTION or reply.get("ok") != 1:
        return None
    counter = reply.get("value")
    if not isinstance(counter, dict) or counter.get("_id") != KEY:
        return None
    return int(counter["value"])
