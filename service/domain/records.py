"""A stored record as the sync engine sees it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.domain.record_types import REFERENCES, RecordType

RecordKey = tuple[RecordType, str]


@dataclass(frozen=True)
class Record:
    type: RecordType
    id: str
    version: int
    fields: dict[str, Any]
    updated_at: datetime
    updated_by: str | None = None
    deleted: bool = False
    owner: str | None = None  # the rep of an OWNED record
    created_by_rep: str | None = None  # the rep whose device created the record (an outlet is in its scope)
    crdt_state: bytes | None = None  # SHARED records: the compacted Yjs document
    crdt_frontiers: dict[str, list[list[Any]]] | None = None  # SHARED: each field's unseen writes (crdt.Write)
    crdt_epoch: int = 0  # SHARED: how many times the CRDT state was compacted (replicas of older ones start over)
    writer_since: int = 1  # first version of updated_by's current run of writes
    seq: int = 0  # position in the global change sequence (pull cursors)

    @property
    def key(self) -> RecordKey:
        return (self.type, self.id)

    def display_name(self) -> str:
        """How a manager recognises this record in a sentence."""
        name = self.fields.get("name")
        if isinstance(name, str) and name.strip():
            return f"{self.type.value.replace('_', ' ').title()} '{name}'"
        return f"{self.type.value.replace('_', ' ').title()} {self.id}"

    def written_only_by_since(self, writer: str, base_version: int) -> bool:
        """True when every version after ``base_version`` was written by ``writer``."""
        return self.updated_by == writer and base_version >= self.writer_since - 1


def references_of(record_type: RecordType, fields: dict[str, Any]) -> list[RecordKey]:
    """Records that these fields point at (outlet, visit, ordered products)."""
    keys = [
        (target, fields[name])
        for name, target in REFERENCES.get(record_type, {}).items()
        if isinstance(fields.get(name), str)
    ]
    lines = fields.get("lines")
    if record_type is RecordType.ORDER and isinstance(lines, list):
        keys += [
            (RecordType.PRODUCT, line["productId"])
            for line in lines
            if isinstance(line, dict) and isinstance(line.get("productId"), str)
        ]
    return keys
