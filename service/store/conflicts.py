"""The ``conflicts`` collection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.conflicts import Conflict, ConflictStatus
from service.domain.record_types import RecordType
from service.store import held_connection
from service.store.database import Store
from service.store.write_batch import WriteBatch

COLLECTION = "conflicts"
INDEXES = [
    IndexModel([("deviceId", ASCENDING), ("status", ASCENDING)], name="device_status"),
    IndexModel([("deviceId", ASCENDING), ("recordId", ASCENDING)], name="device_record"),
    IndexModel([("repId", ASCENDING), ("status", ASCENDING), ("createdAt", ASCENDING)], name="rep_status"),
    IndexModel([("status", ASCENDING), ("createdAt", ASCENDING)], name="status_created"),
]


def to_document(conflict: Conflict) -> dict[str, Any]:
    return {
        "_id": conflict.id,
        "recordType": conflict.record_type.value,
        "recordId": conflict.record_id,
        "deviceId": conflict.device_id,
        "repId": conflict.rep_id,
        "offlineId": conflict.offline_id,
        "baseVersion": conflict.base_version,
        "serverVersion": conflict.server_version,
        "deviceFields": conflict.device_fields,
        "serverFields": conflict.server_fields,
        "changedFields": conflict.changed_fields,
        "status": conflict.status.value,
        "createdAt": conflict.created_at,
        "resolvedAt": conflict.resolved_at,
        "deviceDeletes": conflict.device_deletes,
        "capturedAt": conflict.captured_at,
        "resolvedVersion": conflict.resolved_version,
    }


def from_document(document: dict[str, Any]) -> Conflict:
    return Conflict(
        id=document["_id"],
        record_type=RecordType(document["recordType"]),
        record_id=document["recordId"],
        device_id=document["deviceId"],
        rep_id=document["repId"],
        offline_id=document["offlineId"],
        base_version=document.get("baseVersion"),
        server_version=document["serverVersion"],
        device_fields=document.get("deviceFields"),
        server_fields=document.get("serverFields"),
        changed_fields=document.get("changedFields", []),
        status=ConflictStatus(document["status"]),
        created_at=document["createdAt"],
        resolved_at=document.get("resolvedAt"),
        device_deletes=document.get("deviceDeletes", False),
        captured_at=document.get("capturedAt"),
        resolved_version=document.get("resolvedVersion"),
    )


async def load_for_push(
    store: Store,
    device_id: str,
    ids: Iterable[str],
    record_ids: Iterable[str],
    session: AsyncClientSession | None = None,
) -> dict[str, Conflict]:
    """This device's open conflicts, the conflicts with the given ids, and this device's
    conflicts on the given records (resolved ones say which version queued changes are decided on)."""
    branches: list[dict[str, Any]] = [{"deviceId": device_id, "status": ConflictStatus.OPEN.value}]
    if wanted := sorted(set(ids)):
        branches.append({"_id": {"$in": wanted}})
    if records := sorted(set(record_ids)):
        branches.append({"deviceId": device_id, "recordId": {"$in": records}})
    query = {"$or": branches} if len(branches) > 1 else branches[0]
    found = await held_connection.find(store.db[COLLECTION], query, session)
    return {conflict.id: conflict for conflict in map(from_document, found)}


async def get(store: Store, conflict_id: str, session: AsyncClientSession | None = None) -> Conflict | None:
    document = await store.db[COLLECTION].find_one({"_id": conflict_id}, session=session)
    return from_document(document) if document else None


def save(writes: WriteBatch, conflicts: list[Conflict]) -> None:
    writes.replace_all(COLLECTION, map(to_document, conflicts))


async def find(store: Store, *, rep_id: str | None, status: ConflictStatus | None, limit: int) -> list[Conflict]:
    query: dict[str, Any] = {}
    if rep_id is not None:
        query["repId"] = rep_id
    if status is not None:
        query["status"] = status.value
    cursor = store.db[COLLECTION].find(query).sort("createdAt", ASCENDING).limit(limit)
    return [from_document(document) for document in await cursor.to_list()]
