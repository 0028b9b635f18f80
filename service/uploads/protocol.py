"""The tus 1.0.0 protocol's pure parts: headers in, decisions out, no I/O.

Extensions served: creation, creation-with-upload, termination, checksum (sha256,
and sha1 for clients that only speak that), expiration. What a file may be is
decided here too: its type by its first bytes (never by the name or the
``filetype`` metadata a client sends).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
CHECKSUM_ALGORITHMS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
SNIFF_BYTES = 16  # the longest signature below ends here
MAX_METADATA_BYTES = 4096
_ID = re.compile(r"[A-Za-z0-9._~-]{1,100}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ProtocolError(ValueError):
    """A request the protocol does not allow; ``status`` is the HTTP answer, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadRules:
    max_bytes: int
    allowed_types: frozenset[str]


def media_type(head: bytes) -> str | None:
    """The media type of a file by its first bytes, or None when it is none we know."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"):
        return "image/heic"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def check_type(head: bytes, length: int, rules: UploadRules) -> str | None:
    """The sniffed type once enough bytes are known (None before), or ProtocolError 415 when not allowed."""
    if len(head) < min(SNIFF_BYTES, length):
        return None
    found = media_type(head)
    if found is None or found not in rules.allowed_types:
        allowed = ", ".join(sorted(rules.allowed_types))
        raise ProtocolError(415, f"the file is {found or 'of no known type'}; allowed: {allowed}")
    return found


def require_version(value: str | None) -> None:
    if value != VERSION:
        raise ProtocolError(412, f"Tus-Resumable must be {VERSION}")


def parse_length(value: str | None, rules: UploadRules) -> int:
    if value is None:
        raise ProtocolError(400, "Upload-Length is required (Upload-Defer-Length is not supported)")
    length = _non_negative(value, "Upload-Length")
    if length > rules.max_bytes:
        raise ProtocolError(413, f"Upload-Length {length} exceeds the limit of {rules.max_bytes} bytes")
    return length


def parse_offset(value: str | None) -> int:
    if value is None:
        raise ProtocolError(400, "Upload-Offset is required")
    return _non_negative(value, "Upload-Offset")


def _non_negative(value: str, name: str) -> int:
    if not re.fullmatch(r"[0-9]{1,15}", value.strip()):
        raise ProtocolError(400, f"{name} must be a non-negative integer")
    return int(value)


def parse_metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs; values must be UTF-8 here."""
    if not value:
        return {}
    if len(value) > MAX_METADATA_BYTES:
        raise ProtocolError(400, f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes")
    metadata: dict[str, str] = {}
    for pair in value.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key or " " in encoded.strip() or key in metadata:
            raise ProtocolError(400, "Upload-Metadata must be comma-separated 'key base64value' pairs, keys unique")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ProtocolError(400, f"Upload-Metadata value of {key[:40]!r} is not base64 of UTF-8 text") from None
    return metadata


def attachment_id(metadata: dict[str, str]) -> str | None:
    """The client's own id for the photo (records carry it before the upload exists), if it sent one."""
    value = metadata.get("attachmentId")
    if value is not None and not _ID.fullmatch(value):
        raise ProtocolError(400, "attachmentId must be 1-100 letters, digits, '.', '_', '~' or '-'")
    return value


def declared_sha256(metadata: dict[str, str]) -> str | None:
    value = metadata.get("sha256")
    if value is not None and not _SHA256.fullmatch(value.lower()):
        raise ProtocolError(400, "sha256 metadata must be 64 hex digits")
    return value.lower() if value is not None else None


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def hasher(self) -> hashlib._Hash:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_checksum(value: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>`` of this request's body."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ProtocolError(400, f"checksum algorithm {algorithm[:20]!r} is not supported; use sha256 or sha1")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise ProtocolError(400, "Upload-Checksum digest is not base64") from None
    return Checksum(algorithm, digest)


def expires_header(at: datetime) -> str:
    """``Upload-Expires`` in the RFC 9110 date format."""
    return format_datetime(at.astimezone(UTC), usegmt=True)


def checksum_algorithms() -> str:
    return ",".join(CHECKSUM_ALGORITHMS)
