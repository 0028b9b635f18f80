"""Photos the way a phone sends them: taken offline, pointed at by records, uploaded over tus on their own.

A photo is kept in the device's folder under its ``attachmentId`` until the server holds it;
the record points at it at once (``photos: [{attachmentId, sha256, capturedAt, ...}]``) and is
pushed like any change: records never wait for photos. ``PhotoUploads.upload_pending`` then
sends each photo over tus 1.0.0, when the server offers it:

- creation with ``attachmentId`` and ``sha256`` in ``Upload-Metadata``: asking again after a
  lost answer returns the same upload, and bytes the server already holds are never sent;
- PATCHes of ``chunk`` bytes from the server's offset; after an error, ``HEAD`` says where to
  resume (a 409 means the offset moved: ask again);
- 429 and 503 are "later": the transport's retry policy (``Retry-After`` honoured) applies,
  as do dropped connections. Another refusal (415: not a photo, 413: too large) drops the
  photo, and the device remembers why.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx

from fieldsync_client.transport import Offline, Transport, retry_after

TUS = {"Tus-Resumable": "1.0.0"}
RESTARTS = 5  # an upload the server lost (expired, terminated) is created again at most this often


class _Later(Exception):
    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds


class PhotoRefused(Exception):
    """The server will never take this photo (its status code says why)."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"photo refused with HTTP {status}")


class PhotoUploads:
    """The photos a device still has to send (``pending``: attachmentId -> {sha256, location}, in its state file)."""

    def __init__(self, transport: Transport, folder: Path, pending: dict[str, dict[str, Any]], chunk: int) -> None:
        self.transport = transport
        self.files = transport.endpoint.removesuffix("/graphql") + "/files/"
        self.folder = folder
        self.pending = pending
        self.chunk = chunk
        self._offered: bool | None = None  # whether the server has a tus channel (asked once)

    def keep(self, attachment_id: str, data: bytes) -> str:
        """Keep a photo taken offline until it is sent; its sha256."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / attachment_id).write_bytes(data)
        sha256 = hashlib.sha256(data).hexdigest()
        self.pending[attachment_id] = {"sha256": sha256, "location": None}
        return sha256

    def upload_pending(self, saved: Any) -> tuple[int, dict[str, int]]:
        """Send every pending photo; (how many arrived, {attachmentId: status} of those refused).

        ``saved()`` persists the device's state after each step, so an upload resumes after a restart.
        Raises ``Offline`` when the server cannot be reached (the rest stay pending).
        """
        if not self.pending or not self._has_tus():
            return 0, {}
        arrived, refused = 0, {}
        for attachment_id in sorted(self.pending):
            try:
                self._send(attachment_id, saved)
                arrived += 1
            except PhotoRefused as refusal:
                refused[attachment_id] = refusal.status
            (self.folder / attachment_id).unlink(missing_ok=True)
            del self.pending[attachment_id]
            saved()
        return arrived, refused

    def _has_tus(self) -> bool:
        if self._offered is None:
            response = self._request("OPTIONS", self.files)
            self._offered = response.status_code in (200, 204) and "Tus-Version" in response.headers
        return self._offered

    def _send(self, attachment_id: str, saved: Any) -> None:
        data = (self.folder / attachment_id).read_bytes()
        entry = self.pending[attachment_id]
        for _ in range(RESTARTS):
            offset = self._offset(attachment_id, entry, data, saved)
            while offset is not None and offset < len(data):
                offset = self._patch(entry["location"], offset, data)
            if offset is not None:
                return
            entry["location"] = None  # the server lost it (expired, terminated, refused meanwhile): start again
        raise PhotoRefused(404)

    def _offset(self, attachment_id: str, entry: dict[str, Any], data: bytes, saved: Any) -> int | None:
        """Where the upload stands on the server, created when there is none yet; None: the server lost it."""
        if entry["location"] is None:
            created = self._request("POST", self.files, headers=_creation(attachment_id, entry["sha256"], data))
            entry["location"] = str(httpx.URL(self.files).join(created.headers["Location"]))
            saved()
            return int(created.headers.get("Upload-Offset", 0))
        return self._where(entry["location"])

    def _patch(self, location: str, offset: int, data: bytes) -> int | None:
        """Send the next chunk; the server's offset after it (None: the server lost the upload)."""
        patched = self._request(
            "PATCH",
            location,
            headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
            content=data[offset : offset + self.chunk],
        )
        if patched.status_code == 409:  # the server's offset is elsewhere (an answer was lost): ask it
            return self._where(location)
        return int(patched.headers["Upload-Offset"]) if patched.status_code != 404 else None

    def _where(self, location: str) -> int | None:
        head = self._request("HEAD", location)
        return int(head.headers["Upload-Offset"]) if head.status_code != 404 else None

    def _request(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One tus request, sent again (same request) while the network or the server says "later"."""
        headers = {**TUS, "Authorization": f"Bearer {self.transport.token}", **options.pop("headers", {})}
        for attempt in range(self.transport.max_attempts):
            try:
                response = self.transport.http.request(method, url, headers=headers, **options)
            except httpx.TransportError:
                self.transport.pause(attempt, None)
                continue
            if response.status_code in (429, 503):
                self.transport.pause(attempt, retry_after(response, None))
                continue
            if response.is_success or (method != "POST" and response.status_code in (404, 409)):
                return response  # HEAD and PATCH: the caller asks again where the upload stands
            raise PhotoRefused(response.status_code)
        raise Offline(f"{url} did not take the photo in {self.transport.max_attempts} attempts")


def _creation(attachment_id: str, sha256: str, data: bytes) -> dict[str, str]:
    metadata = {"attachmentId": attachment_id, "sha256": sha256, "filetype": "image/jpeg"}
    encoded = ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items())
    return {"Upload-Length": str(len(data)), "Upload-Metadata": encoded}
