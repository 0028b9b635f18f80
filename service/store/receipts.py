"""The ``receipts`` collection: one per (deviceId, offlineId) that ever arrived."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import InsertOne, ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.composite_ids import composite_id
from service.domain.outcomes import ChangeStatus
from service.domain.receipts import Receipt
from service.domain.record_types import RecordType
from service.store import held_connection
from service.store.database import Store
from service.store.write_batch import WriteBatch

COLLECTION = "receipts"
INDEXES: list = []  # looked up by _id only


def receipt_id(device_id: str, offline_id: str) -> str:
    return composite_id(device_id, offline_id)


def to_document(receipt: Receipt) -> dict[str, Any]:
    return {
        "_id": receipt_id(receipt.device_id, receipt.offline_id),
        "deviceId": receipt.device_id,
        "offlineId": receipt.offline_id,
        "status": receipt.status.value,
        "attempts": receipt.attempts,
        "at": receipt.at,
        "recordType": receipt.record_type.value if receipt.record_type else None,
        "recordId": receipt.record_id,
        "version": receipt.version,
        "conflictId": receipt.conflict_id,
        "digest": receipt.digest,
    }


def from_document(document: dict[str, Any]) -> Receipt:
    return Receipt(
        device_id=document["deviceId"],
        offline_id=document["offlineId"],
        status=ChangeStatus(document["status"]),
        attempts=document["attempts"],
        at=document["at"],
        record_type=RecordType(document["recordType"]) if document.get("recordType") else None,
        record_id=document.get("recordId"),
        version=document.get("version"),
        conflict_id=document.get("conflictId"),
        digest=document.get("digest"),
    )


async def load(
    store: Store, device_id: str, offline_ids: Iterable[str], session: AsyncClientSession | None = None
) -> dict[str, Receipt]:
    ids = sorted({receipt_id(device_id, offline_id) for offline_id in offline_ids})
    found = await held_connection.find(store.db[COLLECTION], {"_id": {"$in": ids}}, session)
    return {receipt.offline_id: receipt for receipt in map(from_document, found)}


def save(writes: WriteBatch, receipts: list[Receipt], stored: frozenset[str]) -> None:
    """Insert the receipts of offlineIds without one (``stored``: those with one, replaced).

    An insert costs the embedded store a fraction of an upsert. A receipt the push did not find
    (or did not look for) that is there fails its insert with a duplicate key: ``ConcurrentWrite``,
    and the push runs again on what the store holds.
    """
    operations = [
        ReplaceOne({"_id": document["_id"]}, document) if document["offlineId"] in stored else InsertOne(document)
        for document in map(to_document, receipts)
    ]
    writes.add(COLLECTION, operations, concurrent="a receipt this push did not read is stored")
