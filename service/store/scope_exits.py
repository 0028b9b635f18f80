"""The ``scope_exits`` collection: one document per (rep, record) that left the rep's scope.

Each carries the sequence number of its latest exit, so a pull meets it in
cursor order among the records; a record that comes back later has a greater
number than its exit, so the device removes it and then receives it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.composite_ids import composite_id
from service.domain.record_types import RecordType
from service.domain.records import RecordKey
from service.domain.scope_exits import ScopeExit
from service.store import held_connection
from service.store.database import Store
from service.store.records import record_id
from service.store.write_batch import WriteBatch

COLLECTION = "scope_exits"
INDEXES = [IndexModel([("rep", ASCENDING), ("seq", ASCENDING)], name="rep_seq")]


def exit_id(rep_id: str, key: RecordKey) -> str:
    return composite_id(rep_id, record_id(key))


def to_document(exit_: ScopeExit, seq: int) -> dict[str, Any]:
    return {
        "_id": exit_id(exit_.rep_id, exit_.key),
        "rep": exit_.rep_id,
        "type": exit_.key[0].value,
        "rid": exit_.key[1],
        "version": exit_.version,
        "at": exit_.at,
        "seq": seq,
    }


def from_document(document: dict[str, Any]) -> ScopeExit:
    return ScopeExit(
        rep_id=document["rep"],
        key=(RecordType(document["type"]), document["rid"]),
        version=document["version"],
        at=document["at"],
        seq=document["seq"],
    )


def save(writes: WriteBatch, exits: list[tuple[ScopeExit, int]]) -> None:
    writes.replace_all(COLLECTION, (to_document(*exit_) for exit_ in exits))


async def left(
    store: Store, rep_id: str, keys: Iterable[RecordKey], session: AsyncClientSession | None = None
) -> set[RecordKey]:
    """Which of ``keys`` have ever left the rep's scope."""
    ids = sorted({exit_id(rep_id, key) for key in keys})
    if not ids:
        return set()
    found = await held_connection.find(store.db[COLLECTION], {"_id": {"$in": ids}}, session, {"type": 1, "rid": 1})
    return {(RecordType(doc["type"]), doc["rid"]) for doc in found}


async def after(store: Store, rep_id: str, after_seq: int, limit: int) -> list[ScopeExit]:
    """The rep's exits after ``after_seq``, in sequence order, at most ``limit``."""
    query = {"rep": rep_id, "seq": {"$gt": after_seq}}
    cursor = store.db[COLLECTION].find(query).sort("seq", ASCENDING).limit(limit)
    return [from_document(document) for document in await cursor.to_list()]
