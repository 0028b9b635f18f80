"""A GridFS file written one chunk per insert, each insert only when ``pace`` lets it.

PyMongo's ``GridIn`` keeps up to 32 MB of chunks in memory and inserts them in one
command when the file closes: an 8 MB PATCH became one insert of 33 chunks that held
the store for a second or more while pushes queued behind it. Here each 255 KB chunk is
its own insert, sent after ``pace`` (pushes first), so a push waits for at most one
chunk per upload, and the service holds at most one chunk per upload.

The documents are GridFS's own (chunks ``{files_id, n, data}``, then the file document
with its ``length``), read and deleted with ``AsyncGridFSBucket`` as usual. Chunk ids are
strings (``<file id>:<n>``), which the embedded store looks up by key on insert.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

Pace = Callable[[], Awaitable[None]]  # awaited before each store write (pushes first)
CHUNK_BYTES = 255 * 1024  # GridFS's default chunk size


def indexes(bucket: str) -> dict[str, list[IndexModel]]:
    """The GridFS spec's indexes (the names drivers give them), created at start-up."""
    chunks = IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True, name="files_id_1_n_1")
    files = IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)], name="filename_1_uploadDate_1")
    return {f"{bucket}.chunks": [chunks], f"{bucket}.files": [files]}


class ChunkedFile:
    def __init__(self, db: AsyncDatabase, bucket: str, file_id: str, metadata: dict[str, Any], pace: Pace) -> None:
        self._chunks = db[f"{bucket}.chunks"]
        self._files = db[f"{bucket}.files"]
        self._id = file_id
        self._metadata = metadata
        self._pace = pace
        self._pending = bytearray()  # less than one chunk
        self._written = 0  # bytes in inserted chunks
        self._n = 0

    async def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= CHUNK_BYTES:
            await self._insert(bytes(self._pending[:CHUNK_BYTES]))
            del self._pending[:CHUNK_BYTES]

    async def close(self) -> None:
        """The last chunk, then the file document: only then is the file readable."""
        if self._pending:
            await self._insert(bytes(self._pending))
            self._pending.clear()
        await self._pace()
        document = {
            "_id": self._id,
            "filename": self._id,
            "length": self._written,
            "chunkSize": CHUNK_BYTES,
            "uploadDate": datetime.now(UTC),
            "metadata": self._metadata,
        }
        await self._files.insert_one(document)

    async def abort(self) -> None:
        """Delete the chunks written so far."""
        self._pending.clear()
        await self._chunks.delete_many({"files_id": self._id})

    async def _insert(self, data: bytes) -> None:
        await self._pace()
        document = {"_id": f"{self._id}:{self._n}", "files_id": self._id, "n": self._n, "data": Binary(data)}
        await self._chunks.insert_one(document)
        self._n += 1
        self._written += len(data)
