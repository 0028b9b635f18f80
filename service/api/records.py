"""RecordEnvelope: a record as devices and dashboards see it."""

from __future__ import annotations

import strawberry

from service.api.context import Info
from service.api.photos import Photo, photos_of
from service.api.scalars import JSON, Base64, DateTime
from service.domain.record_types import RecordType
from service.domain.records import Record
from service.domain.scope_exits import ScopeExit


@strawberry.type
class RecordEnvelope:
    record_type: RecordType
    record_id: strawberry.ID
    version: int
    deleted: bool
    fields: JSON | None
    crdt_state: Base64 | None
    crdt_epoch: int = strawberry.field(
        description="SHARED: how many times the CRDT state was compacted. A replica of an older epoch "
        "starts over from crdtState, with a new Yjs client id; updates it made before are still taken."
    )
    updated_at: DateTime
    updated_by: strawberry.ID | None
    out_of_scope: bool = strawberry.field(
        default=False, description="The record left the caller's scope (reassigned, unassigned): remove it."
    )

    @strawberry.field(description="VISIT, ORDER, WORK_ORDER: the photos it points at, and whether each has arrived")
    async def photos(self, info: Info) -> list[Photo] | None:
        return await photos_of(info, self.fields)

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
            crdt_epoch=record.crdt_epoch,
            updated_at=record.updated_at,
            updated_by=strawberry.ID(record.updated_by) if record.updated_by else None,
        )

    @classmethod
    def left(cls, exit_: ScopeExit) -> RecordEnvelope:
        """A record that left the rep's scope: its identity and no data."""
        return cls(
            record_type=exit_.key[0],
            record_id=strawberry.ID(exit_.key[1]),
            version=exit_.version,
            deleted=False,
            fields=None,
            crdt_state=None,
            crdt_epoch=0,
            updated_at=exit_.at,
            updated_by=None,
            out_of_scope=True,
        )

    @classmethod
    def in_page(cls, entry: Record | ScopeExit) -> RecordEnvelope:
        return cls.left(entry) if isinstance(entry, ScopeExit) else cls.of(entry)


def envelope(record: Record | None, crdt: bytes | None = None) -> RecordEnvelope | None:
    return RecordEnvelope.of(record, crdt) if record is not None else None
