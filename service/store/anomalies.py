"""The ``anomalies`` collection: one document per flag, written in the transaction of the change it concerns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.anomalies import Anomaly, AnomalyCode, AnomalyStatus, Severity
from service.domain.anomalies.query import AnomalyCursor, AnomalyPage, AnomalyQuery
from service.domain.record_types import RecordType
from service.domain.report import FlagTally
from service.store.database import Store
from service.store.documents import find_by_ids
from service.store.write_batch import WriteBatch

COLLECTION = "anomalies"
INDEXES = [
    IndexModel([("repId", ASCENDING), ("status", ASCENDING), ("flaggedAt", DESCENDING)], name="rep_status_flagged"),
    IndexModel([("deviceId", ASCENDING), ("flaggedAt", DESCENDING)], name="device_flagged"),
    IndexModel([("code", ASCENDING), ("flaggedAt", DESCENDING)], name="code_flagged"),
    IndexModel([("status", ASCENDING), ("flaggedAt", DESCENDING)], name="status_flagged"),
    IndexModel([("flaggedAt", DESCENDING)], name="flagged"),
]


def to_document(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "_id": anomaly.id,
        "code": anomaly.code.value,
        "severity": anomaly.severity.value,
        "status": anomaly.status.value,
        "reason": anomaly.reason,
        "evidence": anomaly.evidence,
        "repId": anomaly.rep_id,
        "deviceId": anomaly.device_id,
        "flaggedAt": anomaly.flagged_at,
        "syncId": anomaly.sync_id,
        "recordType": anomaly.record_type.value if anomaly.record_type else None,
        "recordId": anomaly.record_id,
        "offlineId": anomaly.offline_id,
        "capturedAt": anomaly.captured_at,
        "reviewedAt": anomaly.reviewed_at,
        "reviewedBy": anomaly.reviewed_by,
        "note": anomaly.note,
    }


def from_document(document: dict[str, Any]) -> Anomaly:
    return Anomaly(
        id=document["_id"],
        code=AnomalyCode(document["code"]),
        severity=Severity(document["severity"]),
        status=AnomalyStatus(document["status"]),
        reason=document["reason"],
        evidence=document.get("evidence") or {},
        rep_id=document["repId"],
        device_id=document["deviceId"],
        flagged_at=document["flaggedAt"],
        sync_id=document.get("syncId"),
        record_type=RecordType(document["recordType"]) if document.get("recordType") else None,
        record_id=document.get("recordId"),
        offline_id=document.get("offlineId"),
        captured_at=document.get("capturedAt"),
        reviewed_at=document.get("reviewedAt"),
        reviewed_by=document.get("reviewedBy"),
        note=document.get("note"),
    )


def save(writes: WriteBatch, anomalies: Iterable[Anomaly]) -> None:
    writes.replace_all(COLLECTION, map(to_document, anomalies))


async def get(store: Store, anomaly_id: str, session: AsyncClientSession | None = None) -> Anomaly | None:
    document = await store.db[COLLECTION].find_one({"_id": anomaly_id}, session=session)
    return from_document(document) if document else None


async def get_many(store: Store, anomaly_ids: Iterable[str]) -> dict[str, Anomaly]:
    """Flags by id, in one read (ids not found are left out)."""
    return {a.id: a for a in map(from_document, await find_by_ids(store.db[COLLECTION], anomaly_ids))}


def _match(query: AnomalyQuery) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for name, value in (("repId", query.rep_id), ("deviceId", query.device_id)):
        if value is not None:
            match[name] = value
    for name, values in (("code", query.codes), ("status", query.statuses), ("severity", query.severities)):
        if values:
            match[name] = {"$in": [v.value for v in values]}
    window = {op: at for op, at in (("$gte", query.since), ("$lt", query.until)) if at is not None}
    if window:
        match["flaggedAt"] = window
    return match


async def page(store: Store, query: AnomalyQuery, after: AnomalyCursor | None, limit: int) -> AnomalyPage:
    """Newest first, by (flaggedAt, id); the total counts every match."""
    collection = store.db[COLLECTION]
    match = _match(query)
    total = await collection.count_documents(match)
    if after is not None:
        at, last_id = after
        match = {"$and": [match, {"$or": [{"flaggedAt": {"$lt": at}}, {"flaggedAt": at, "_id": {"$lt": last_id}}]}]}
    cursor = collection.find(match).sort([("flaggedAt", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1)
    documents = await cursor.to_list()
    return AnomalyPage([from_document(d) for d in documents[:limit]], len(documents) > limit, total)


async def open_for_reps(store: Store, rep_ids: list[str]) -> list[Anomaly]:
    """The reps' open flags, newest first."""
    query = {"repId": {"$in": rep_ids}, "status": AnomalyStatus.OPEN.value}
    cursor = store.db[COLLECTION].find(query).sort("flaggedAt", DESCENDING)
    return [from_document(document) for document in await cursor.to_list()]


async def count_flagged(store: Store, since: datetime, until: datetime, rep_id: str | None = None) -> list[FlagTally]:
    """Flags per (rep, code) with ``since <= flaggedAt < until``, counted by the database."""
    match: dict[str, Any] = {"flaggedAt": {"$gte": since, "$lt": until}}
    if rep_id is not None:
        match["repId"] = rep_id
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {"$group": {"_id": {"repId": "$repId", "code": "$code"}, "count": {"$sum": 1}}},
    ]
    rows = await (await store.db[COLLECTION].aggregate(pipeline)).to_list()
    return [FlagTally(row["_id"]["repId"], row["_id"]["code"], row["count"]) for row in rows]
