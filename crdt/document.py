"""The Yjs document of a shared record and the operations the server needs on it.

Layout (the protocol's contract with devices): a Map ``fields`` of scalar fields
by name, a Map ``tags`` (tag -> true; a deleted key or a false value is not a
tag) and a Text ``notes``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pycrdt import Doc, Map, Text, get_update, merge_updates

FIELDS, TAGS, NOTES = "fields", "tags", "notes"


class CrdtDecodeError(ValueError):
    """Bytes that are not a Yjs update (or state vector) this layout can use."""


class SharedDocument:
    """One shared record's Yjs document."""

    def __init__(self, state: bytes | None = None) -> None:
        self._pending: bytes | None = None  # held-back parts of applied updates, as one update
        self._reset()
        if state:
            self.apply(state)

    def _reset(self, state: bytes | None = None, pending: bytes | None = None) -> None:
        """A fresh pycrdt document holding ``state``, with ``pending`` held back aside."""
        self._doc: Doc = Doc()
        self._fields = self._doc.get(FIELDS, type=Map)
        self._tags = self._doc.get(TAGS, type=Map)
        self._notes = self._doc.get(NOTES, type=Text)
        if state:
            self._doc.apply_update(state)
        self._pending = pending
        self._encoded: bytes | None = state  # the integrated document, encoded, while it is unchanged
        self._changes = 0  # transactions that changed something (Yrs reports only those)
        self._subscription = self._doc.observe(self._changed)

    def _changed(self, event: object) -> None:
        self._changes += 1
        self._encoded = None

    def apply(self, update: bytes) -> bool:
        """Merge a Yjs update; True when the document changed (``state()`` is different).

        All or nothing: an update that fails leaves the document as it was. Parts of an
        update that wait for updates not seen yet (insertions whose origin is unknown,
        deletions of unknown items) are held back, kept in ``state()`` and applied once
        what they wait for arrives, as Yjs does.
        """
        saved, pending, changes = self._integrated(), self._pending, self._changes
        try:
            candidate = update if pending is None else merge_updates(pending, update)
            self._doc.apply_update(candidate)
            integrated = self._changes != changes
            held_back = self._unintegrated(candidate)
            if held_back is not None:
                # pycrdt loses parts of several held-back updates once they can apply (it
                # integrates them in part), so it never keeps any between two calls: we do.
                self._reset(self._doc.get_update(), held_back)
            self._pending = held_back
        except BaseException as error:  # pycrdt raises a Rust panic (BaseException) on some garbage
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            self._reset(saved, pending)  # a failed update may have been integrated in part
            raise CrdtDecodeError(f"not a Yjs update: {error}") from None
        return integrated or self._pending != pending

    def state(self) -> bytes:
        """The whole document, compacted, as one Yjs update (held-back parts included)."""
        state = self._integrated()
        return state if self._pending is None else merge_updates(state, self._pending)

    def _integrated(self) -> bytes:
        """The integrated document encoded; kept until the next change (a hot document is large)."""
        if self._encoded is None:
            self._encoded = self._doc.get_update()
        return self._encoded

    def state_vector(self) -> bytes:
        return self._doc.get_state()

    def missing_for(self, state_vector: bytes | None) -> bytes:
        """What a replica with this state vector lacks (everything when None)."""
        if state_vector is None:
            return self.state()
        try:
            missing = self._doc.get_update(state_vector)
            if self._pending is not None:
                missing = merge_updates(missing, get_update(self._pending, state_vector))
            return missing
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
        """The record as plain JSON: fields, sorted tags, notes.

        Raises CrdtDecodeError for content that is no JSON (binary values) or that
        pycrdt cannot read back (a corrupted nested type).
        """
        try:
            with self._doc.transaction():  # one read transaction, not one per value
                fields = {key: _plain(self._fields[key]) for key in sorted(self._fields)}
                fields["tags"] = sorted(tag for tag in self._tags if self._tags[tag] is True)
                fields["notes"] = str(self._notes)
        except (ValueError, TypeError, KeyError) as error:
            raise CrdtDecodeError(f"the document holds content that is not JSON: {error}") from None
        return fields

    def knows_client(self, client_id: int) -> bool:
        """Whether the document already holds content written by ``client_id``."""
        return client_id in _clocks(self._doc.get_state())

    def copy(self) -> SharedDocument:
        return SharedDocument(self.state())

    def _unintegrated(self, update: bytes) -> bytes | None:
        """What of ``update`` the document lacks after applying it (held back), or None."""
        state_vector = self._doc.get_state()
        rest = get_update(update, state_vector)  # the structs beyond the state vector, all deletions
        reader = _Reader(rest)
        if reader.uint():
            return rest
        clocks = _clocks(state_vector)
        for client, clock, length in _deletions(reader):
            if clock + length > clocks.get(client, 0):
                return rest
        return None


def materialize_json(document: SharedDocument) -> str:
    """Canonical JSON of the materialized document: equal documents, equal bytes."""
    return json.dumps(document.materialize(), sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Yjs nested types (a device may store them) as plain JSON."""
    to_py = getattr(value, "to_py", None)
    value = to_py() if to_py is not None else value
    json.dumps(value)  # TypeError for binary values: fields are JSON
    return value


class _Reader:
    """Unsigned LEB128 integers (lib0 varuint) from bytes pycrdt encoded."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    def uint(self) -> int:
        value = shift = 0
        while True:
            byte = self._data[self._at]
            self._at += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7


def _clocks(state_vector: bytes) -> dict[int, int]:
    reader = _Reader(state_vector)
    clocks: dict[int, int] = {}
    for _ in range(reader.uint()):
        client = reader.uint()
        clocks[client] = reader.uint()
    return clocks


def _deletions(reader: _Reader) -> Iterator[tuple[int, int, int]]:
    """(client, clock, length) of an encoded delete set."""
    for _ in range(reader.uint()):
        client = reader.uint()
        for _ in range(reader.uint()):
            clock = reader.uint()
            yield client, clock, reader.uint()
