"""The ``photos`` collection: one document per attachment id a record points at, and
whether its upload has finished (``availableAt``).

Records are written first and photos follow on their own channel, in either order:
a record's write sets who is waiting for the photo (``$setOnInsert`` leaves
``availableAt`` alone), an upload's completion sets ``availableAt`` (upserting), so
whichever comes first the photo ends up AVAILABLE once both have happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.records import Record
from service.store.database import Store
from service.store.write_batch import WriteBatch

COLLECTION = "photos"
INDEXES = [
    IndexModel([("repId", ASCENDING), ("availableAt", ASCENDING)], name="rep_pending"),
    IndexModel([("deviceId", ASCENDING), ("availableAt", ASCENDING)], name="device_pending"),
]


def note_references(writes: WriteBatch, records: Iterable[Record]) -> set[str]:
    """Remember the photos written records point at (one bulk write; none when no record has photos); the
    writers (devices) of the records that point at any."""
    pointing = [
        (record, photo) for record in records if not record.deleted for photo in record.fields.get("photos") or ()
    ]
    operations = [
        UpdateOne(
            {"_id": photo["attachmentId"]},
            {
                "$set": {
                    "repId": record.owner,
                    "deviceId": record.updated_by,
                    "recordType": record.type.value,
                    "recordId": record.id,
                    "sha256": photo.get("sha256"),
                },
                "$setOnInsert": {"referencedAt": record.updated_at, "availableAt": None},
            },
            upsert=True,
        )
        for record, photo in pointing
    ]
    writes.add(COLLECTION, operations)
    return {record.updated_by for record, _ in pointing if record.updated_by}


async def mark_available(store: Store, attachment_id: str, at: datetime, session: AsyncClientSession) -> None:
    await store.db[COLLECTION].update_one(
        {"_id": attachment_id}, {"$set": {"availableAt": at}}, upsert=True, session=session
    )


@dataclass(frozen=True)
class Backlog:
    count: int
    oldest: datetime  # when the server first saw a record point at the oldest of them


async def overdue(store: Store, *, referenced_before: datetime, by: str, ids: list[str]) -> dict[str, Backlog]:
    """Per device: photos its records point at, referenced before ``referenced_before`` and not uploaded.

    ``by`` is ``repId`` or ``deviceId``: which of ``ids`` to look at.
    """
    cursor = store.db[COLLECTION].find(
        {by: {"$in": ids}, "availableAt": None, "referencedAt": {"$lte": referenced_before}},
        {"deviceId": 1, "referencedAt": 1},
    )
    counts: Counter[str] = Counter()
    oldest: dict[str, datetime] = {}
    for document in await cursor.to_list():
        device = document.get("deviceId") or ""
        counts[device] += 1
        oldest[device] = min(oldest.get(device, document["referencedAt"]), document["referencedAt"])
    return {device: Backlog(counts[device], oldest[device]) for device in counts}
