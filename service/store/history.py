"""The ``history`` collection (one document per sync event, ``_id`` = its sequence
number, zero-padded text) and ``syncs`` (one per push)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.history import PUSH, SyncEvent
from service.domain.record_types import RecordType
from service.domain.report import ActionTally
from service.store.database import Store

COLLECTION = "history"
SYNCS = "syncs"


def indexes(retention_days: int) -> dict[str, list[IndexModel]]:
    return {
        COLLECTION: [
            IndexModel([("at", ASCENDING)], name="retention", expireAfterSeconds=retention_days * 86_400),
            IndexModel([("repId", ASCENDING), ("_id", ASCENDING)], name="rep"),
            IndexModel([("deviceId", ASCENDING), ("_id", ASCENDING)], name="device"),
            IndexModel([("recordType", ASCENDING), ("recordId", ASCENDING), ("_id", ASCENDING)], name="record"),
            IndexModel([("action", ASCENDING), ("_id", ASCENDING)], name="action"),
            IndexModel([("syncId", ASCENDING)], name="sync"),
        ],
        SYNCS: [
            IndexModel([("receivedAt", ASCENDING)], name="retention", expireAfterSeconds=retention_days * 86_400),
            IndexModel([("repId", ASCENDING), ("receivedAt", ASCENDING)], name="rep_received"),
        ],
    }


def event_key(seq: int) -> str:
    """Events are keyed by their sequence number as fixed-width text: it sorts the same, and
    text ``_id`` values keep inserts cheap on the embedded store (numeric ones make it scan)."""
    return f"{seq:020d}"


def to_document(event: SyncEvent, seq: int) -> dict[str, Any]:
    return {
        "_id": event_key(seq),
        "action": event.action,
        "at": event.at,
        "syncId": event.sync_id,
        "deviceId": event.device_id,
        "repId": event.rep_id,
        "actorId": event.actor_id,
        "offlineId": event.offline_id,
        "recordType": event.record_type.value if event.record_type else None,
        "recordId": event.record_id,
        "attempt": event.attempt,
        "versionBefore": event.version_before,
        "versionAfter": event.version_after,
        "utcOffsetMinutes": event.utc_offset_minutes,
        "detail": event.detail,
    }


def from_document(document: dict[str, Any]) -> SyncEvent:
    return SyncEvent(
        id=int(document["_id"]),
        action=document["action"],
        at=document["at"],
        sync_id=document.get("syncId"),
        device_id=document.get("deviceId"),
        rep_id=document.get("repId"),
        actor_id=document.get("actorId"),
        offline_id=document.get("offlineId"),
        record_type=RecordType(document["recordType"]) if document.get("recordType") else None,
        record_id=document.get("recordId"),
        attempt=document.get("attempt"),
        version_before=document.get("versionBefore"),
        version_after=document.get("versionAfter"),
        utc_offset_minutes=document.get("utcOffsetMinutes"),
        detail=document.get("detail") or {},
    )


async def append(
    store: Store, events: list[SyncEvent], seqs: range, session: AsyncClientSession
) -> list[SyncEvent]:
    """Store events under their sequence numbers; returns them with ids."""
    documents = [to_document(event, seq) for event, seq in zip(events, seqs, strict=True)]
    if documents:
        await store.db[COLLECTION].insert_many(documents, ordered=True, session=session)
    return [from_document(document) for document in documents]


async def record_sync(
    store: Store,
    *,
    sync_id: str,
    device_id: str | None,
    rep_id: str | None,
    app_version: str | None,
    received_at: datetime,
    finished_at: datetime,
    counts: dict[str, int],
    session: AsyncClientSession,
) -> None:
    """Count a chunk of a push into its sync session (created by the first chunk)."""
    await store.db[SYNCS].update_one(
        {"_id": sync_id},
        {
            "$setOnInsert": {
                "deviceId": device_id,
                "repId": rep_id,
                "appVersion": app_version,
                "receivedAt": received_at,
            },
            "$set": {"finishedAt": finished_at},
            "$inc": {f"counts.{action}": count for action, count in counts.items()},
        },
        upsert=True,
        session=session,
    )


@dataclass(frozen=True)
class HistoryFilter:
    rep_id: str | None = None
    device_id: str | None = None
    record_type: RecordType | None = None
    record_id: str | None = None
    actions: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.rep_id is not None:
            query["repId"] = self.rep_id
        if self.device_id is not None:
            query["deviceId"] = self.device_id
        if self.record_type is not None:
            query["recordType"] = self.record_type.value
        if self.record_id is not None:
            query["recordId"] = self.record_id
        if self.actions:
            query["action"] = {"$in": list(self.actions)}
        window = {op: at for op, at in (("$gte", self.since), ("$lt", self.until)) if at is not None}
        if window:
            query["at"] = window
        return query


async def page(store: Store, filter: HistoryFilter, after_id: int, limit: int) -> tuple[list[SyncEvent], bool]:
    """Events after ``after_id`` in sequence order; the index on the filter's field keeps every page cheap."""
    query = {**filter.query(), "_id": {"$gt": event_key(after_id)}}
    cursor = store.db[COLLECTION].find(query).sort("_id", ASCENDING).limit(limit + 1)
    documents = await cursor.to_list()
    return [from_document(d) for d in documents[:limit]], len(documents) > limit


def stream(store: Store, filter: HistoryFilter, batch_size: int = 1000, *, after_id: int = 0) -> Any:
    """A server-side cursor over every matching event (after ``after_id``), in sequence order.

    It holds one batch at a time; an export resumes where it stopped by passing the last id it wrote.
    """
    query = {**filter.query(), "_id": {"$gt": event_key(after_id)}} if after_id else filter.query()
    return store.db[COLLECTION].find(query).sort("_id", ASCENDING).batch_size(batch_size)


async def count_actions(
    store: Store, since: datetime, until: datetime, rep_id: str | None = None
) -> list[ActionTally]:
    """Events per (rep, action) with ``since <= at < until``, counted by the database (the ``at`` index)."""
    match: dict[str, Any] = {"at": {"$gte": since, "$lt": until}}
    if rep_id is not None:
        match["repId"] = rep_id
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {"$project": {"_id": 0, "repId": 1, "action": 1}},
        {"$group": {"_id": {"repId": "$repId", "action": "$action"}, "count": {"$sum": 1}}},
    ]
    rows = await (await store.db[COLLECTION].aggregate(pipeline, allowDiskUse=True)).to_list()
    return [ActionTally(row["_id"].get("repId"), row["_id"]["action"], row["count"]) for row in rows]


async def devices_pushed(
    store: Store, since: datetime, until: datetime, rep_id: str | None = None
) -> list[tuple[str, str | None]]:
    """The distinct (device, rep) pairs with a PUSH event in ``[since, until)``, found by the database."""
    match: dict[str, Any] = {"at": {"$gte": since, "$lt": until}, "action": PUSH}
    if rep_id is not None:
        match["repId"] = rep_id
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {"$project": {"_id": 0, "deviceId": 1, "repId": 1}},
        {"$group": {"_id": {"deviceId": "$deviceId", "repId": "$repId"}}},
    ]
    rows = await (await store.db[COLLECTION].aggregate(pipeline, allowDiskUse=True)).to_list()
    return [(row["_id"]["deviceId"], row["_id"].get("repId")) for row in rows if row["_id"].get("deviceId")]
