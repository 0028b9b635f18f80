"""One queued offline change, as a device sends it."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cached_property
from typing import Any

from service.domain.record_types import RecordType
from service.domain.records import RecordKey, references_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    crdt_epoch: int | None = None  # the record's epoch the crdtUpdate and stateVector were made on (None: 0)
    latitude: float | None = None
    longitude: float | None = None

    @property
    def key(self) -> RecordKey:
        return (self.record_type, self.record_id)

    @cached_property
    def digest(self) -> str:
        """What the change says, hashed (once): a retry has the same digest, a reused offlineId does not.

        Spelling does not count: ``capturedAt`` as an instant whatever its offset, numbers by
        value (``2`` = ``2.0``); the ``stateVector`` is how the answer is shaped, not content.
        """
        captured = self.captured_at  # as time since the epoch: the instant, whatever the offset
        said = [
            self.record_type.value,
            self.record_id,
            self.operation.value,
            self.base_version,
            _by_value(self.fields),
            self.crdt_update.hex() if self.crdt_update is not None else None,
            str(captured - _EPOCH) if captured.utcoffset() is not None else captured.isoformat(),
            _by_value(self.latitude),
            _by_value(self.longitude),
        ]
        if self.crdt_epoch is not None:  # only when sent, so the digests of changes without it stay as they were
            said.append(self.crdt_epoch)
        return hashlib.sha256(_DIGEST_JSON(said).encode()).hexdigest()

    def as_sent(self) -> dict[str, Any]:
        """The change as the device sent it, for a manager to read (and apply) from a refusal."""
        return {
            "recordType": self.record_type.value,
            "recordId": self.record_id,
            "operation": self.operation.value,
            "baseVersion": self.base_version,
            "fields": self.fields,
            "crdtUpdate": base64.b64encode(self.crdt_update).decode() if self.crdt_update is not None else None,
            "crdtEpoch": self.crdt_epoch,
            "capturedAt": self.captured_at.isoformat(),
            "latitude": self.latitude,
            "longitude": self.longitude,
        }

    @property
    def made_on_epoch(self) -> int:
        return self.crdt_epoch or 0

    @cached_property
    def references(self) -> tuple[RecordKey, ...]:
        """Records this change points at through its reference fields (worked out once: a push asks four times)."""
        return tuple(references_of(self.record_type, self.fields or {}))


_DIGEST_JSON = json.JSONEncoder(sort_keys=True, default=str).encode  # json.dumps would build one per call


def _by_value(value: Any) -> Any:
    """``value`` with every integral float as an int, so ``2.0`` and ``2`` say the same."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _by_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_by_value(item) for item in value]
    return value
