"""One queued offline change, as a device sends it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from service.domain.record_types import RecordType
from service.domain.records import RecordKey, references_of


class Operation(Enum):
    UPSERT = "UPSERT"
    DELETE = "DELETE"


@dataclass(frozen=True)
class Change:
    offline_id: str
    record_type: RecordType
    record_id: str
    operation: Operation
    captured_at: datetime  # may lack an offset: the rules refuse it, the parser does not
    base_version: int | None = None
    fields: dict[str, Any] | None = None
    crdt_update: bytes | None = None
    state_vector: bytes | None = None
    latitude: float | None = None
    longitude: float | None = None

    @property
    def key(self) -> RecordKey:
        return (self.record_type, self.record_id)

    def digest(self) -> str:
        """What the change says, hashed: a retry has the same digest, a reused offlineId does not."""
        said = [
            self.record_type.value,
            self.record_id,
            self.operation.value,
            self.base_version,
            self.fields,
            self.crdt_update.hex() if self.crdt_update is not None else None,
            self.captured_at.isoformat(),
        ]
        return hashlib.sha256(json.dumps(said, sort_keys=True, default=str).encode()).hexdigest()

    def references(self) -> list[RecordKey]:
        """Records this change points at through its reference fields."""
        return references_of(self.record_type, self.fields or {})
