"""The ``history`` collection: one document per sync event, ``_id`` = its sequence
number, zero-padded text, also kept as the integer ``seq``. A push's sync session is its
``PUSH`` event (counts, queue depth, app version); there is no other record of it.

Pages, exports and the event follower read ranges of ``seq`` through an index that
ends in ``seq`` (``docs/query-shapes.md``), so their cost does not grow with the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, InsertOne

from service.domain.frozen import evolve
from service.domain.history import PUSH, SyncEvent
from service.domain.record_types import RecordType
from service.domain.report import ActionTally
from service.store.database import Store
from service.store.write_batch import WriteBatch

COLLECTION = "history"


def indexes(retention_days: int) -> dict[str, list[IndexModel]]:
    return {
        COLLECTION: [
            IndexModel([("at", ASCENDING)], name="retention", expireAfterSeconds=retention_days * 86_400),
            IndexModel([("seq", ASCENDING)], name="seq"),
            IndexModel([("repId", ASCENDING), ("seq", ASCENDING)], name="rep_seq"),
            IndexModel([("deviceId", ASCENDING), ("seq", ASCENDING)], name="device_seq"),
            IndexModel([("recordType", ASCENDING), ("recordId", ASCENDING), ("seq", ASCENDING)], name="record_seq"),
            IndexModel([("action", ASCENDING), ("seq", ASCENDING)], name="action_seq"),
        ],
    }


def event_key(seq: int) -> str:
    """Events are keyed by their sequence number as fixed-width text: it sorts the same, and
    text ``_id`` values keep inserts cheap on the embedded store (numeric ones make it scan)."""
    return f"{seq:020d}"


def to_document(event: SyncEvent, seq: int) -> dict[str, Any]:
    return {
        "_id": event_key(seq),
        "seq": seq,
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


def append(writes: WriteBatch, events: list[SyncEvent], seqs: range) -> list[SyncEvent]:
    """Store events under their sequence numbers; returns them with ids."""
    documents = [to_document(event, seq) for event, seq in zip(events, seqs, strict=True)]
    writes.add(COLLECTION, list(map(InsertOne, documents)), ordered=True)
    return [evolve(event, id=seq) for event, seq in zip(events, seqs, strict=True)]


def written(event: SyncEvent) -> dict[str, object]:
    """A filter matching exactly the stored ``event`` (as ``append`` returned it): a sequence number
    is taken again after an abort, a sync id never is."""
    return {"_id": event_key(event.id or 0), "syncId": event.sync_id}


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
        return {**self.indexed(), **self.residual()}

    def indexed(self) -> dict[str, Any]:
        """The one equality an index ending in ``seq`` serves (rep, device, record or a single action)."""
        if self.rep_id is not None:
            return {"repId": self.rep_id}
        if self.device_id is not None:
            return {"deviceId": self.device_id}
        if self.record_type is not None and self.record_id is not None:
            return {"recordType": self.record_type.value, "recordId": self.record_id}
        if len(self.actions) == 1:
            return {"action": self.actions[0]}
        return {}

    def residual(self) -> dict[str, Any]:
        """Every other condition: checked on the events the index yields."""
        query: dict[str, Any] = {}
        for name, value in (
            ("repId", self.rep_id),
            ("deviceId", self.device_id),
            ("recordType", self.record_type.value if self.record_type else None),
            ("recordId", self.record_id),
        ):
            if value is not None:
                query[name] = value
        if self.actions:
            query["action"] = self.actions[0] if len(self.actions) == 1 else {"$in": list(self.actions)}
        window = {op: at for op, at in (("$gte", self.since), ("$lt", self.until)) if at is not None}
        if window:
            query["at"] = window
        return {name: value for name, value in query.items() if name not in self.indexed()}

    def matches(self, event: SyncEvent) -> bool:
        return (
            self.rep_id in (None, event.rep_id)
            and self.device_id in (None, event.device_id)
            and self.record_type in (None, event.record_type)
            and self.record_id in (None, event.record_id)
            and (not self.actions or event.action in self.actions)
            and (self.since is None or event.at >= self.since)
            and (self.until is None or event.at < self.until)
        )


async def page(
    store: Store, filter: HistoryFilter, after_id: int, limit: int, *, batch: int = 500
) -> tuple[list[SyncEvent], bool]:
    """Events after ``after_id`` in sequence order.

    The query holds only what an index serves exactly (``filter.indexed()`` and a ``seq``
    range, sorted by ``seq``): its cost is the events it reads, never the history's size.
    Other conditions are checked here, reading on in batches until the page is full.
    """
    found: list[SyncEvent] = []
    position = after_id
    while True:
        query = {**filter.indexed(), "seq": {"$gt": position}}
        documents = await store.db[COLLECTION].find(query).sort("seq", ASCENDING).limit(batch).to_list()
        for event in map(from_document, documents):
            position = event.id or position
            if filter.matches(event):
                found.append(event)
                if len(found) > limit:
                    return found[:limit], True
        if len(documents) < batch:
            return found, False


def stream(store: Store, filter: HistoryFilter, batch_size: int = 1000, *, after_id: int = 0) -> Any:
    """A server-side cursor over every matching event (after ``after_id``), in sequence order.

    It holds one batch at a time; an export resumes where it stopped by passing the last id it wrote.
    """
    query = {**filter.query(), "seq": {"$gt": after_id}}
    return store.db[COLLECTION].find(query, {"seq": 0}).sort("seq", ASCENDING).batch_size(batch_size)


async def after(store: Store, seq: int, limit: int) -> list[SyncEvent]:
    """The first ``limit`` events after ``seq``, in sequence order (the event follower's read)."""
    cursor = store.db[COLLECTION].find({"seq": {"$gt": seq}}).sort("seq", ASCENDING).limit(limit)
    return [from_document(document) for document in await cursor.to_list()]


async def count_actions(store: Store, since: datetime, until: datetime, rep_id: str | None = None) -> list[ActionTally]:
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
