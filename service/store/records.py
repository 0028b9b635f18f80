"""The ``records`` collection: one document per record, with its CRDT state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bson import Binary
from pymongo import ASCENDING, IndexModel, InsertOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.frozen import build, evolve
from service.domain.initial_sync import happens_at
from service.domain.push_plan import RecordWrite
from service.domain.record_types import RecordType
from service.domain.records import Record, RecordKey
from service.domain.scope import assigned_reps
from service.store import held_connection
from service.store.database import Store
from service.store.write_batch import WriteBatch

COLLECTION = "records"
INDEXES = [
    IndexModel([("owner", ASCENDING), ("seq", ASCENDING)], name="owner_seq"),
    IndexModel([("type", ASCENDING), ("seq", ASCENDING)], name="type_seq"),
    IndexModel([("reps", ASCENDING)], name="reps"),  # outlets assigned to a rep (pull); multikey
]


_TYPES = {record_type.value: record_type for record_type in RecordType}  # a dict look-up, not Enum's call


def record_id(key: RecordKey) -> str:
    return f"{key[0].value}:{key[1]}"


def to_document(record: Record, seq: int, refs: Iterable[RecordKey] = ()) -> dict[str, Any]:
    return {
        "_id": record_id(record.key),
        "type": record.type.value,
        "rid": record.id,
        "version": record.version,
        "fields": record.fields,
        "deleted": record.deleted,
        "owner": record.owner,
        "creatorRep": record.created_by_rep,
        "reps": assigned_reps(record),  # the reps whose outlet scope holds it by itself
        "crdt": Binary(record.crdt_state) if record.crdt_state is not None else None,
        "crdtFrontiers": record.crdt_frontiers,
        "crdtEpoch": record.crdt_epoch,
        "updatedAt": record.updated_at,
        "updatedBy": record.updated_by,
        "writerSince": record.writer_since,
        "seq": seq,
        "refs": sorted({record_id(ref) for ref in refs}),
        "when": happens_at(record.type, record.fields),  # the initial sync's window
    }


def from_document(document: dict[str, Any]) -> Record:
    crdt = document.get("crdt")
    return build(
        Record,
        {
            "type": _TYPES[document["type"]],
            "id": document["rid"],
            "version": document["version"],
            "fields": document["fields"],
            "updated_at": document["updatedAt"],
            "updated_by": document.get("updatedBy"),
            "deleted": document["deleted"],
            "owner": document.get("owner"),
            "created_by_rep": document.get("creatorRep"),
            "crdt_state": bytes(crdt) if crdt is not None else None,
            "crdt_frontiers": document.get("crdtFrontiers"),
            "crdt_epoch": document.get("crdtEpoch", 0),
            "writer_since": document.get("writerSince", 1),
            "seq": document["seq"],
        },
    )


async def load(
    store: Store, keys: Iterable[RecordKey], session: AsyncClientSession | None = None
) -> dict[RecordKey, Record]:
    ids = sorted({record_id(key) for key in keys})
    if not ids:
        return {}
    found = await held_connection.find(store.db[COLLECTION], {"_id": {"$in": ids}}, session)
    return {record.key: record for record in map(from_document, found)}


def write(batch: WriteBatch, writes: list[tuple[RecordWrite, int, Iterable[RecordKey]]]) -> dict[RecordKey, Record]:
    """Write new versions under optimistic concurrency (a record changed since it was read, or created:
    ``ConcurrentWrite``); returns them with their seq."""
    operations: list[InsertOne | ReplaceOne] = []
    stored: dict[RecordKey, Record] = {}
    for write_, seq, refs in writes:
        document = to_document(write_.record, seq, refs)
        if write_.expected_version is None:
            operations.append(InsertOne(document))
        else:
            operations.append(ReplaceOne({"_id": document["_id"], "version": write_.expected_version}, document))
        stored[write_.record.key] = evolve(write_.record, seq=seq)
    expected_updates = sum(1 for w, _, _ in writes if w.expected_version is not None)
    concurrent = "a record changed while the push was being decided"
    batch.add(COLLECTION, operations, ordered=True, concurrent=concurrent, matched=expected_updates)
    return stored
