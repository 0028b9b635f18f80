"""The upload channel's use cases: create, append, finish, terminate, expire, read.

A PATCH body is streamed into a part (GridFS, in chunks) while its checksum, the
file's running sha256 and the type check are computed on the way; the part counts
once it is committed. A dropped connection keeps what arrived (unless the request
carried a checksum, which can then not be verified). The last byte finishes the
upload: sha256, one stored file per content, a history event, and the photo turns
AVAILABLE for every record that points at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from service.auth.roles import Principal, Role
from service.domain.history import UPLOAD_COMPLETED, SyncEvent
from service.store import history, sequence
from service.store.database import Store
from service.store.write_batch import WriteBatch
from service.uploads import photo_refs, storage
from service.uploads.budget import PushPriority, UploadBudget
from service.uploads.chunked_file import ChunkedFile
from service.uploads.protocol import (
    SNIFF_BYTES,
    Checksum,
    ProtocolError,
    UploadRules,
    attachment_id,
    check_type,
    declared_sha256,
)
from service.uploads.storage import Content, Part, Upload

Transaction = Callable[[Callable[[AsyncClientSession], Awaitable[Any]]], Awaitable[Any]]


class BodyInterrupted(Exception):
    """The client went away before its request body ended."""


class _RunningHashes:
    """The sha256 of each upload so far, while one process receives it (else recomputed from the parts)."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._hashes: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    def take(self, upload_id: str, offset: int) -> Any:
        offset_then, running = self._hashes.pop(upload_id, (None, None))
        if offset == 0:
            return hashlib.sha256()
        return running if offset_then == offset else None

    def put(self, upload_id: str, offset: int, running: Any) -> None:
        if running is None:
            return
        self._hashes[upload_id] = (offset, running)
        while len(self._hashes) > self._size:
            self._hashes.popitem(last=False)

    def finished(self, upload_id: str, length: int) -> str | None:
        offset, running = self._hashes.pop(upload_id, (None, None))
        return running.hexdigest() if offset == length and running is not None else None


class UploadChannel:
    def __init__(
        self,
        store: Store,
        *,
        rules: UploadRules,
        expire_after: timedelta,
        budget: UploadBudget,
        priority: PushPriority,
        transaction: Transaction,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self.rules = rules
        self._expire_after = expire_after
        self.budget = budget
        self._priority = priority
        self._transaction = transaction
        self._clock = clock
        self._hashes = _RunningHashes()
        self._finishing: dict[str, asyncio.Lock] = {}

    # -- tus requests ----------------------------------------------------------

    async def create(
        self, device: Principal, length: int, metadata: dict[str, str], body: AsyncIterator[bytes] | None = None
    ) -> Upload:
        """POST: a new upload (the client's ``attachmentId`` when it sent one), with its first bytes if any."""
        wanted = attachment_id(metadata) or str(uuid.uuid4())
        declared = declared_sha256(metadata)
        now = self._clock()
        upload = Upload(
            id=wanted,
            rep_id=device.user_id,
            device_id=device.device_id or "",
            length=length,
            created_at=now,
            expires_at=now + self._expire_after,
            metadata=metadata,
            declared_sha256=declared,
        )
        try:
            await storage.insert(self._store, upload)
        except DuplicateKeyError:
            existing = await storage.get(self._store, wanted)
            if existing is None or existing.rep_id != device.user_id or existing.length != length:
                raise ProtocolError(409, f"attachment {wanted} is already an upload of another file") from None
            upload = existing  # the app lost our answer and asks again: the same upload
        held = declared is not None and await storage.content_with(self._store, declared) is not None
        if held and not upload.complete and upload.offset == 0:
            if body is not None:  # creation-with-upload: its first bytes are not needed
                with contextlib.suppress(BodyInterrupted):
                    async for _ in body:
                        pass
            return await self._finish(upload, known_sha256=declared)  # those bytes are here already
        if body is not None and not upload.complete and upload.offset == 0:
            return await self.append(device, upload.id, 0, body, None)
        return upload

    async def status(self, device: Principal, upload_id: str) -> Upload:
        """HEAD: where the upload stands (finishing it first if its last byte arrived before a crash)."""
        upload = await self._own(device, upload_id)
        if not upload.complete and upload.offset == upload.length:
            upload = await self._finish(upload)
        return upload

    async def append(
        self,
        device: Principal,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        checksum: Checksum | None,
    ) -> Upload:
        """PATCH: bytes from ``offset`` on."""
        upload = await self._own(device, upload_id)
        if offset != upload.offset:
            raise ProtocolError(409, f"Upload-Offset {offset} is not the server's offset {upload.offset}; HEAD, resume")
        if upload.complete:
            return upload
        async with self.budget.slot(upload.device_id):
            part = f"{upload.id}.{offset}.{uuid.uuid4().hex[:12]}"
            await self._priority.wait()
            claimed = await storage.claim(self._store, upload.id, offset, part, self._clock() + self._expire_after)
            if claimed is None:
                raise ProtocolError(409, "the upload moved on meanwhile; HEAD for its offset")
            upload = await self._write(claimed, part, body, checksum)
        if upload.offset == upload.length:
            await self._priority.wait()
            upload = await self._finish(upload)
        return upload

    async def terminate(self, device: Principal, upload_id: str) -> None:
        """DELETE: an unfinished upload and its bytes; a finished photo stays (records point at it)."""
        upload = await self._own(device, upload_id)
        if upload.complete:
            raise ProtocolError(409, "the upload is complete; a finished photo is not deleted through tus")
        await storage.delete_files(self._store, await storage.remove(self._store, upload.id))

    async def expire(self) -> int:
        """Delete unfinished uploads past their expiry; returns how many."""
        count = 0
        while ids := await storage.expired(self._store, self._clock()):
            for upload_id in ids:
                await storage.delete_files(self._store, await storage.remove(self._store, upload_id))
                count += 1
        return count

    async def readable(self, principal: Principal, upload_id: str) -> Upload:
        """A finished photo the caller may read: its rep's own, or any for staff and integrators."""
        upload = await storage.get(self._store, upload_id)
        if upload is None or not principal.may_see_rep(upload.rep_id):
            raise ProtocolError(404, f"no photo {upload_id}")
        if not upload.complete:
            raise ProtocolError(404, f"photo {upload_id} is still being uploaded ({upload.offset}/{upload.length})")
        return upload

    # -- steps -------------------------------------------------------------------

    async def _own(self, device: Principal, upload_id: str) -> Upload:
        upload = await storage.get(self._store, upload_id)
        if upload is None or upload.rep_id != device.user_id:
            raise ProtocolError(404, f"no upload {upload_id} (it may have expired)")
        if not upload.complete and upload.expires_at <= self._clock():
            await storage.delete_files(self._store, await storage.remove(self._store, upload.id))
            raise ProtocolError(410, f"upload {upload_id} expired; create it again")
        return upload

    async def _write(
        self, upload: Upload, part_id: str, body: AsyncIterator[bytes], checksum: Checksum | None
    ) -> Upload:
        target = storage.open_part(self._store, part_id, upload.id, self._priority.wait)
        request_hash = checksum.hasher() if checksum else None
        running = self._hashes.take(upload.id, upload.offset)
        head, content_type, received = upload.head, upload.content_type, 0
        try:
            async for piece in body:
                if upload.offset + received + len(piece) > upload.length:
                    raise ProtocolError(413, f"the body goes past Upload-Length {upload.length}")
                await self.budget.spend(upload.device_id, len(piece))
                await self._priority.wait()
                if len(head) < SNIFF_BYTES:
                    head = (head + piece)[:SNIFF_BYTES]
                    content_type = content_type or check_type(head, upload.length, self.rules)
                for digest in (request_hash, running):
                    if digest is not None:
                        digest.update(piece)
                await target.write(piece)
                received += len(piece)
            if request_hash is not None and checksum is not None and request_hash.digest() != checksum.digest:
                raise ProtocolError(460, f"Checksum Mismatch: the body's {checksum.algorithm} is not Upload-Checksum")
        except BodyInterrupted:
            if checksum is not None or not received:  # what arrived cannot be verified, or nothing did
                return await self._drop(upload, part_id, target)
        except ProtocolError as error:
            await self._drop(upload, part_id, target)
            if error.status == 415:  # this file will never be accepted: nothing to resume
                await storage.delete_files(self._store, await storage.remove(self._store, upload.id))
            raise
        except BaseException:
            await self._drop(upload, part_id, target)
            raise
        if not received:
            return await self._drop(upload, part_id, target)
        await target.close()
        committed = await storage.commit_part(self._store, upload, Part(part_id, received), head, content_type)
        if committed is None:  # a newer PATCH took over while this one was still receiving
            await storage.delete_files(self._store, [part_id])
            raise ProtocolError(409, "a newer request took over this upload; HEAD for its offset")
        self._hashes.put(upload.id, committed.offset, running)
        return committed

    async def _drop(self, upload: Upload, part_id: str, target: ChunkedFile) -> Upload:
        await target.abort()
        await storage.release(self._store, upload.id, part_id)
        return await storage.get(self._store, upload.id) or upload

    async def _finish(self, upload: Upload, known_sha256: str | None = None) -> Upload:
        lock = self._finishing.setdefault(upload.id, asyncio.Lock())
        try:
            async with lock:
                current = await storage.get(self._store, upload.id)
                if current is None or current.complete:
                    return current or upload
                return await self._store_content(current, known_sha256)
        finally:
            if not lock.locked():
                self._finishing.pop(upload.id, None)

    async def _store_content(self, upload: Upload, known_sha256: str | None) -> Upload:
        parts = [p.id for p in upload.parts]
        if known_sha256 is not None:  # declared, and stored already: nothing to receive
            sha256 = known_sha256
        else:
            running = self._hashes.finished(upload.id, upload.length)
            sha256 = running or await storage.sha256_of(self._store, parts, self._priority.wait)
            if upload.declared_sha256 and sha256 != upload.declared_sha256:
                await storage.delete_files(self._store, await storage.reset(self._store, upload.id))
                raise ProtocolError(460, "the file's sha256 is not the one in its Upload-Metadata; send it again")
        content = await storage.content_with(self._store, sha256)
        if content is None:
            content = Content(sha256, tuple(parts), upload.content_type or "")
            try:
                await storage.register_content(self._store, content, upload.length, self._clock())
            except DuplicateKeyError:  # the same bytes finished elsewhere a moment ago
                content = await storage.content_with(self._store, sha256)
                assert content is not None
        deduplicated = content.files != tuple(parts)
        finished = await self._record(upload, content, deduplicated)
        kept = set(content.files)
        await storage.delete_files(self._store, [f for f in (*parts, *upload.orphans) if f not in kept])
        return finished

    async def _record(self, upload: Upload, content: Content, deduplicated: bool) -> Upload:
        """Complete the upload, its history event and its photo's status in one transaction."""
        now = self._clock()

        async def work(tx: AsyncClientSession) -> Upload:
            finished = await storage.mark_complete(
                self._store, upload.id, content=content, deduplicated=deduplicated, at=now, session=tx
            )
            if finished is None:
                raise ProtocolError(409, "the upload was finished by another request")
            event = SyncEvent(
                action=UPLOAD_COMPLETED,
                at=now,
                device_id=upload.device_id,
                rep_id=upload.rep_id,
                actor_id=upload.rep_id,
                detail={
                    "attachmentId": upload.id,
                    "sha256": content.sha256,
                    "size": upload.length,
                    "contentType": content.content_type,
                    "durationMs": round((now - upload.created_at).total_seconds() * 1000),
                    "deduplicated": deduplicated,
                },
            )
            writes = WriteBatch(self._store)
            history.append(writes, [event], await sequence.take(self._store, tx, 1))
            await writes.send(tx)
            await photo_refs.mark_available(self._store, upload.id, now, tx)
            return finished

        try:
            result: Upload = await self._transaction(work)
        except ProtocolError:
            current = await storage.get(self._store, upload.id)
            if current is None:
                raise
            return current
        return result


def is_device(principal: Principal) -> bool:
    return principal.role is Role.REP and principal.device_id is not None
