"""The Yjs document of a shared record and the operations the server needs on it.

Layout (the protocol's contract with devices): a Map ``fields`` of scalar fields
by name, a Map ``tags`` (tag -> true; a deleted key or a false value is not a
tag) and a Text ``notes``.
"""

from __future__ import annotations

import json
from typing import Any

from pycrdt import Doc, Map, Text

FIELDS, TAGS, NOTES = "fields", "tags", "notes"


class CrdtDecodeError(ValueError):
    """Bytes that are not a Yjs update (or state vector) this layout can use."""


class SharedDocument:
    """One shared record's Yjs document."""

    def __init__(self, state: bytes | None = None) -> None:
        self._doc: Doc = Doc()
        self._fields = self._doc.get(FIELDS, type=Map)
        self._tags = self._doc.get(TAGS, type=Map)
        self._notes = self._doc.get(NOTES, type=Text)
        if state:
            self.apply(state)

    def apply(self, update: bytes) -> bool:
        """Merge a Yjs update; True when the document changed."""
        before = self.state_vector()
        try:
            self._doc.apply_update(update)
        except BaseException as error:  # pycrdt raises a Rust panic (BaseException) on some garbage
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            raise CrdtDecodeError(f"not a Yjs update: {error}") from None
        return self.state_vector() != before

    def state(self) -> bytes:
        """The whole document, compacted, as one Yjs update."""
        return self._doc.get_update()

    def state_vector(self) -> bytes:
        return self._doc.get_state()

    def missing_for(self, state_vector: bytes | None) -> bytes:
        """What a replica with this state vector lacks (everything when None)."""
        if state_vector is None:
            return self.state()
        try:
            return self._doc.get_update(state_vector)
        except BaseException as error:
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            raise CrdtDecodeError(f"not a Yjs state vector: {error}") from None

    def replace_notes(self, text: str) -> None:
        """A server edit of the collaborative notes (whole-text replacement)."""
        with self._doc.transaction():
            del self._notes[:]
            self._notes += text

    def materialize(self) -> dict[str, Any]:
        """The record as plain JSON: fields, sorted tags, notes."""
        fields = {key: _plain(self._fields[key]) for key in sorted(self._fields.keys())}
        fields["tags"] = sorted(tag for tag in self._tags.keys() if self._tags[tag] is True)
        fields["notes"] = str(self._notes)
        return fields

    def copy(self) -> SharedDocument:
        return SharedDocument(self.state())


def materialize_json(document: SharedDocument) -> str:
    """Canonical JSON of the materialized document: equal documents, equal bytes."""
    return json.dumps(document.materialize(), sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Yjs nested types (a device may store them) as plain JSON."""
    to_py = getattr(value, "to_py", None)
    return to_py() if to_py is not None else value
