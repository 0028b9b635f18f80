"""RecordEnvelope: a record as devices and dashboards see it."""

from __future__ import annotations

import strawberry

from service.api.scalars import JSON, Base64, DateTime
from service.domain.record_types import RecordType
from service.domain.records import Record


@strawberry.type
class RecordEnvelope:
    record_type: RecordType
    record_id: strawberry.ID
    version: int
    deleted: bool
    fields: JSON | None
    crdt_state: Base64 | None
    updated_at: DateTime
    updated_by: strawberry.ID | None

    @classmethod
    def of(cls, record: Record, crdt: bytes | None = None) -> RecordEnvelope:
        """``crdt``: what the device lacks; the whole state when not given."""
        return cls(
            record_type=record.type,
            record_id=strawberry.ID(record.id),
            version=record.version,
            deleted=record.deleted,
            fields=record.fields,
            crdt_state=crdt if crdt is not None else record.crdt_state,
            updated_at=record.updated_at,
            updated_by=strawberry.ID(record.updated_by) if record.updated_by else None,
        )


def envelope(record: Record | None, crdt: bytes | None = None) -> RecordEnvelope | None:
    return RecordEnvelope.of(record, crdt) if record is not None else None
