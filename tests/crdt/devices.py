"""Simulated devices: pycrdt documents editing the protocol's layout, as a phone's Yjs library does."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Map, Text


class Device:
    """One phone's Yjs document; each edit returns the update it makes (what the phone pushes)."""

    def __init__(self, client_id: int) -> None:
        self.doc: Doc = Doc(client_id=client_id)
        self.fields = self.doc.get("fields", type=Map)
        self.tags = self.doc.get("tags", type=Map)
        self.notes = self.doc.get("notes", type=Text)

    def set(self, **fields: Any) -> bytes:
        before = self.doc.get_state()
        with self.doc.transaction():
            for name, value in fields.items():
                self.fields[name] = value
        return self.doc.get_update(before)

    def tag(self, tag: str, present: bool = True) -> bytes:
        before = self.doc.get_state()
        if present:
            self.tags[tag] = True
        else:
            del self.tags[tag]
        return self.doc.get_update(before)

    def type(self, index: int, text: str) -> bytes:
        before = self.doc.get_state()
        self.notes.insert(min(index, len(self.notes)), text)
        return self.doc.get_update(before)

    def erase(self, index: int, count: int) -> bytes:
        before = self.doc.get_state()
        start = min(index, len(self.notes))
        del self.notes[start : min(start + count, len(self.notes))]
        return self.doc.get_update(before)

    def receive(self, update: bytes) -> None:
        self.doc.apply_update(update)

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    def view(self) -> dict[str, Any]:
        """What the phone shows, in the shape of ``SharedDocument.materialize``."""
        fields = {key: _plain(self.fields[key]) for key in sorted(self.fields)}
        fields["tags"] = sorted(tag for tag in self.tags if self.tags[tag] is True)
        fields["notes"] = str(self.notes)
        return fields


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
