"""Plain-field patches as Yjs updates that merge last-writer-wins per field.

A patch ``{"name": "Kedai Ali"}`` captured at time T on device D becomes a Yjs
update written from an empty document by a client whose id grows with T and,
for equal T, with D. Concurrent writes to one Map key in Yjs are won by the
higher client id, so the latest ``capturedAt`` wins (the device id breaks
ties) whatever order the patches arrive in, and patches stay ordinary Yjs
updates: they merge with device-made updates and replay anywhere.

Limits, by construction: stamps have millisecond precision, and two patches
with the same millisecond and the same device share a client id (the later
arrival then changes nothing for fields the first one set).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pycrdt import Doc, Map

from crdt.document import FIELDS, TAGS

_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_DEVICE_BITS = 11
_MILLIS_BITS = 53 - _DEVICE_BITS  # client ids must stay below 2**53 for JavaScript peers


@dataclass(frozen=True)
class FieldStamp:
    """Who wrote a patch and when: the last-writer-wins order."""

    captured_at: datetime
    device_id: str

    def client_id(self) -> int:
        millis = int((self.captured_at - _EPOCH).total_seconds() * 1000)
        millis = min(max(millis, 0), (1 << _MILLIS_BITS) - 1)
        device = zlib.crc32(self.device_id.encode()) & ((1 << _DEVICE_BITS) - 1)
        return (millis << _DEVICE_BITS) | device


def field_patch_update(patch: dict[str, Any], stamp: FieldStamp) -> bytes:
    """The Yjs update of a field patch. ``tags`` is ``{tag: bool}`` or a list of tags to add."""
    doc: Doc = Doc(client_id=stamp.client_id())
    fields = doc.get(FIELDS, type=Map)
    tags = doc.get(TAGS, type=Map)
    try:
        with doc.transaction():
            for name, value in patch.items():
                if name == TAGS:
                    for tag, present in _tag_flags(value).items():
                        tags[tag] = present
                else:
                    fields[name] = value
    except BaseException as error:  # pycrdt panics (a BaseException) on values Yjs cannot hold
        if isinstance(error, (KeyboardInterrupt, SystemExit, ValueError)):
            raise
        raise ValueError(f"a value cannot be stored in a Yjs document: {error}") from None
    return doc.get_update()


def _tag_flags(value: Any) -> dict[str, bool]:
    if isinstance(value, list):
        return {str(tag): True for tag in value}
    if isinstance(value, dict):
        return {str(tag): bool(present) for tag, present in value.items()}
    raise ValueError("tags must be a list of tags or an object of tag -> true/false")
