"""Where uploads live: the ``uploads`` collection (tus state, one per attachment id), the
``attachments`` GridFS bucket (the bytes) and ``contents`` (one per sha256).

Every PATCH body is written as its own GridFS file (a *part*), one chunk at a time
(``chunked_file``), so what the server has survives a dropped connection or a restart. A finished upload's
parts, in order, are its content: nothing is copied when it finishes. ``contents`` is
keyed by sha256, so the same bytes are stored once, even when two uploads of them
finish at once: the later one's parts are deleted and it points at the first's.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import Binary
from gridfs import AsyncGridFSBucket, NoFile
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from service.store.database import Store
from service.uploads.chunked_file import CHUNK_BYTES, ChunkedFile, Pace, indexes

COLLECTION = "uploads"
BUCKET = "attachments"
CONTENTS = "contents"
INDEXES: dict[str, list[IndexModel]] = {
    COLLECTION: [
        IndexModel([("expiresAt", ASCENDING)], name="expiry"),
        IndexModel([("sha256", ASCENDING)], name="content"),
    ],
    CONTENTS: [],  # keyed by sha256
    **indexes(BUCKET),
}


@dataclass(frozen=True)
class Part:
    id: str
    length: int


@dataclass(frozen=True)
class Upload:
    id: str  # the attachment id records carry
    rep_id: str
    device_id: str
    length: int
    created_at: datetime
    expires_at: datetime
    offset: int = 0
    parts: tuple[Part, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    declared_sha256: str | None = None
    head: bytes = b""  # the first bytes, for the type check
    content_type: str | None = None
    completed_at: datetime | None = None
    sha256: str | None = None
    content_files: tuple[str, ...] = ()  # the GridFS files holding its bytes, in order, once complete
    deduplicated: bool = False  # its bytes were already stored
    orphans: tuple[str, ...] = ()  # parts of PATCHes that never committed (their chunks may remain)

    @property
    def complete(self) -> bool:
        return self.completed_at is not None


def to_document(upload: Upload) -> dict[str, Any]:
    return {
        "_id": upload.id,
        "repId": upload.rep_id,
        "deviceId": upload.device_id,
        "length": upload.length,
        "offset": upload.offset,
        "parts": [{"id": p.id, "length": p.length} for p in upload.parts],
        "orphans": [],
        "writer": None,
        "metadata": upload.metadata,
        "declaredSha256": upload.declared_sha256,
        "head": Binary(upload.head),
        "contentType": upload.content_type,
        "createdAt": upload.created_at,
        "expiresAt": upload.expires_at,
        "completedAt": upload.completed_at,
        "sha256": upload.sha256,
        "contentFiles": list(upload.content_files),
        "deduplicated": upload.deduplicated,
    }


def from_document(document: dict[str, Any]) -> Upload:
    return Upload(
        id=document["_id"],
        rep_id=document["repId"],
        device_id=document["deviceId"],
        length=document["length"],
        offset=document["offset"],
        parts=tuple(Part(p["id"], p["length"]) for p in document["parts"]),
        metadata=document["metadata"],
        declared_sha256=document.get("declaredSha256"),
        head=bytes(document.get("head") or b""),
        content_type=document.get("contentType"),
        created_at=document["createdAt"],
        expires_at=document["expiresAt"],
        completed_at=document.get("completedAt"),
        sha256=document.get("sha256"),
        content_files=tuple(document.get("contentFiles") or ()),
        deduplicated=document.get("deduplicated", False),
        orphans=tuple(document.get("orphans") or ()),
    )


async def insert(store: Store, upload: Upload) -> None:
    """Raises DuplicateKeyError when the id is taken."""
    await store.db[COLLECTION].insert_one(to_document(upload))


async def get(store: Store, upload_id: str, session: AsyncClientSession | None = None) -> Upload | None:
    document = await store.db[COLLECTION].find_one({"_id": upload_id}, session=session)
    return from_document(document) if document else None


async def get_many(store: Store, ids: Iterable[str]) -> dict[str, Upload]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    documents = await store.db[COLLECTION].find({"_id": {"$in": wanted}}).to_list()
    return {d["_id"]: from_document(d) for d in documents}


async def claim(store: Store, upload_id: str, offset: int, part_id: str, expires_at: datetime) -> Upload | None:
    """Make ``part_id`` the one writer of the upload's next bytes (a newer PATCH supersedes an older one).

    The part is listed as an orphan until it is committed, so whatever a killed
    process left of it is deleted with the upload.
    """
    document = await store.db[COLLECTION].find_one_and_update(
        {"_id": upload_id, "offset": offset, "completedAt": None},
        {"$set": {"writer": part_id, "expiresAt": expires_at}, "$push": {"orphans": part_id}},
        return_document=ReturnDocument.AFTER,
    )
    return from_document(document) if document else None


async def commit_part(store: Store, upload: Upload, part: Part, head: bytes, content_type: str | None) -> Upload | None:
    """Add a written part if its PATCH is still the upload's writer; None when it was superseded."""
    document = await store.db[COLLECTION].find_one_and_update(
        {"_id": upload.id, "writer": part.id, "offset": upload.offset},
        {
            "$inc": {"offset": part.length},
            "$push": {"parts": {"id": part.id, "length": part.length}},
            "$pull": {"orphans": part.id},
            "$set": {"writer": None, "head": Binary(head), "contentType": content_type},
        },
        return_document=ReturnDocument.AFTER,
    )
    return from_document(document) if document else None


async def release(store: Store, upload_id: str, part_id: str) -> None:
    """A PATCH that wrote nothing worth keeping lets go of the upload."""
    await store.db[COLLECTION].update_one({"_id": upload_id, "writer": part_id}, {"$set": {"writer": None}})


async def reset(store: Store, upload_id: str) -> list[str]:
    """Back to offset 0 (the whole file failed its declared sha256); returns the parts to delete."""
    document = await store.db[COLLECTION].find_one_and_update(
        {"_id": upload_id, "completedAt": None},
        {"$set": {"offset": 0, "parts": [], "orphans": [], "writer": None, "head": Binary(b"")}},
    )
    return _stored_parts(document) if document else []


async def mark_complete(
    store: Store,
    upload_id: str,
    *,
    content: Content,
    deduplicated: bool,
    at: datetime,
    session: AsyncClientSession,
) -> Upload | None:
    """Complete the upload (once); None when it already was."""
    document = await store.db[COLLECTION].find_one_and_update(
        {"_id": upload_id, "completedAt": None},
        [
            {
                "$set": {
                    "offset": "$length",
                    "completedAt": at,
                    "contentFiles": list(content.files),
                    "sha256": content.sha256,
                    "contentType": content.content_type,
                    "deduplicated": deduplicated,
                    "parts": [],
                    "orphans": [],
                    "writer": None,
                }
            }
        ],
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return from_document(document) if document else None


async def remove(store: Store, upload_id: str) -> list[str]:
    """Delete an unfinished upload; returns the GridFS files its parts left."""
    document = await store.db[COLLECTION].find_one_and_delete({"_id": upload_id, "completedAt": None})
    return _stored_parts(document) if document else []


async def expired(store: Store, now: datetime, limit: int = 100) -> list[str]:
    cursor = store.db[COLLECTION].find({"expiresAt": {"$lt": now}, "completedAt": None}, {"_id": 1}).limit(limit)
    return [document["_id"] for document in await cursor.to_list()]


def _stored_parts(document: dict[str, Any]) -> list[str]:
    return [p["id"] for p in document.get("parts", [])] + list(document.get("orphans", []))


# -- GridFS ---------------------------------------------------------------


def bucket(store: Store) -> AsyncGridFSBucket:
    return AsyncGridFSBucket(store.db, bucket_name=BUCKET, chunk_size_bytes=CHUNK_BYTES)


def open_part(store: Store, part_id: str, upload_id: str, pace: Pace) -> ChunkedFile:
    return ChunkedFile(store.db, BUCKET, part_id, {"uploadId": upload_id}, pace)


async def delete_files(store: Store, file_ids: Iterable[str]) -> None:
    """Delete GridFS files and their chunks, also chunks whose file document was never written."""
    files = bucket(store)
    for file_id in file_ids:
        with contextlib.suppress(NoFile):  # chunks of a part whose writer died are deleted all the same
            await files.delete(file_id)


@dataclass(frozen=True)
class Content:
    sha256: str
    files: tuple[str, ...]  # GridFS files, in order
    content_type: str


async def content_with(store: Store, sha256: str) -> Content | None:
    """The stored content with these bytes, if any."""
    document = await store.db[CONTENTS].find_one({"_id": sha256})
    return Content(sha256, tuple(document["files"]), document["contentType"]) if document else None


async def register_content(store: Store, content: Content, length: int, at: datetime) -> None:
    """Raises DuplicateKeyError when those bytes are stored already."""
    document = {"_id": content.sha256, "files": list(content.files), "contentType": content.content_type}
    await store.db[CONTENTS].insert_one({**document, "length": length, "createdAt": at})


async def sha256_of(store: Store, parts: Iterable[str], pace: Pace | None = None) -> str:
    digest = hashlib.sha256()
    async for piece in read_files(store, parts, pace):
        digest.update(piece)
    return digest.hexdigest()


async def read_files(store: Store, file_ids: Iterable[str], pace: Pace | None = None) -> AsyncIterator[bytes]:
    """The files' bytes one after the other, a chunk at a time (``pace`` is awaited before each chunk)."""
    files = bucket(store)
    for file_id in file_ids:
        stream = await files.open_download_stream(file_id)
        while True:
            if pace is not None:
                await pace()
            piece = await stream.readchunk()
            if not piece:
                break
            yield piece
