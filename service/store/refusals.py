"""The ``refusals`` collection: refused changes and refused pushes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.record_types import RecordType
from service.domain.refusals import Refusal, RefusalAction, RefusalKind, RefusalStatus
from service.store import held_connection
from service.store.database import Store
from service.store.documents import find_by_ids
from service.store.write_batch import WriteBatch

COLLECTION = "refusals"
INDEXES = [
    IndexModel([("deviceId", ASCENDING), ("status", ASCENDING), ("action", ASCENDING)], name="device_status_action"),
    IndexModel([("repId", ASCENDING), ("status", ASCENDING), ("createdAt", DESCENDING)], name="rep_status"),
    IndexModel([("status", ASCENDING), ("createdAt", DESCENDING)], name="status_created"),
]


def to_document(refusal: Refusal) -> dict[str, Any]:
    return {
        "_id": refusal.id,
        "kind": refusal.kind.value,
        "code": refusal.code,
        "reason": refusal.reason,
        "action": refusal.action.value,
        "status": refusal.status.value,
        "createdAt": refusal.created_at,
        "attempts": refusal.attempts,
        "field": refusal.field,
        "related": (
            {"recordType": refusal.related[0].value, "recordId": refusal.related[1]} if refusal.related else None
        ),
        "recordType": refusal.record_type.value if refusal.record_type else None,
        "recordId": refusal.record_id,
        "offlineId": refusal.offline_id,
        "deviceId": refusal.device_id,
        "repId": refusal.rep_id,
        "resolvedAt": refusal.resolved_at,
        "note": refusal.note,
        "change": refusal.change,
    }


def from_document(document: dict[str, Any]) -> Refusal:
    related = document.get("related")
    return Refusal(
        id=document["_id"],
        kind=RefusalKind(document["kind"]),
        code=document["code"],
        reason=document["reason"],
        action=RefusalAction(document["action"]),
        status=RefusalStatus(document["status"]),
        created_at=document["createdAt"],
        attempts=document.get("attempts", 1),
        field=document.get("field"),
        related=(RecordType(related["recordType"]), related["recordId"]) if related else None,
        record_type=RecordType(document["recordType"]) if document.get("recordType") else None,
        record_id=document.get("recordId"),
        offline_id=document.get("offlineId"),
        device_id=document.get("deviceId"),
        rep_id=document.get("repId"),
        resolved_at=document.get("resolvedAt"),
        note=document.get("note"),
        change=document.get("change"),
    )


async def load_for_push(
    store: Store, device_id: str, ids: Iterable[str], session: AsyncClientSession | None = None
) -> list[Refusal]:
    """This device's open record refusals that block its queue (``FIX_DATA``), and its refusals with the
    given ids: open ``ACKNOWLEDGE`` refusals block nothing, and a device may hold many until a manager
    acknowledges them, so a push does not read them."""
    open_here = {
        "deviceId": device_id,
        "status": RefusalStatus.OPEN.value,
        "action": RefusalAction.FIX_DATA.value,
        "kind": RefusalKind.RECORD.value,
    }
    wanted = sorted(set(ids))
    query = {"$or": [open_here, {"_id": {"$in": wanted}}]} if wanted else open_here
    return [from_document(document) for document in await held_connection.find(store.db[COLLECTION], query, session)]


async def get(store: Store, refusal_id: str, session: AsyncClientSession | None = None) -> Refusal | None:
    document = await store.db[COLLECTION].find_one({"_id": refusal_id}, session=session)
    return from_document(document) if document else None


async def get_many(store: Store, refusal_ids: Iterable[str]) -> dict[str, Refusal]:
    """Refusals by id, in one read (ids not found are left out)."""
    return {r.id: r for r in map(from_document, await find_by_ids(store.db[COLLECTION], refusal_ids))}


def save(writes: WriteBatch, refusals: Iterable[Refusal]) -> None:
    writes.replace_all(COLLECTION, map(to_document, refusals))
