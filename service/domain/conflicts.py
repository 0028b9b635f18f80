"""Conflicts on single-owner records and how a rep resolves them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from service.domain.changes import Change, Operation
from service.domain.record_types import RecordType
from service.domain.records import Record


class ConflictStatus(Enum):
    OPEN = "OPEN"
    OVERWRITTEN = "OVERWRITTEN"
    DISCARDED = "DISCARDED"


class Resolution(Enum):
    OVERWRITE = "OVERWRITE"  # the device's whole record wins, reverting the other edits
    DISCARD = "DISCARD"  # the server record stands


@dataclass(frozen=True)
class Conflict:
    id: str
    record_type: RecordType
    record_id: str
    device_id: str
    rep_id: str
    offline_id: str
    base_version: int | None
    server_version: int
    device_fields: dict[str, Any] | None
    server_fields: dict[str, Any] | None
    changed_fields: list[str]
    status: ConflictStatus
    created_at: datetime
    resolved_at: datetime | None = None
    device_deletes: bool = False
    captured_at: datetime | None = None
    resolved_version: int | None = None  # the record's version once resolved: the device's queue goes on from it


def changed_fields(device: dict[str, Any] | None, server: dict[str, Any] | None) -> list[str]:
    """Field names whose values differ between the two versions."""
    device, server = device or {}, server or {}
    return sorted(name for name in device.keys() | server.keys() if device.get(name) != server.get(name))


def device_change(conflict: Conflict) -> Change:
    """The device's change that met the conflict, as it was pushed."""
    return Change(
        offline_id=conflict.offline_id,
        record_type=conflict.record_type,
        record_id=conflict.record_id,
        operation=Operation.DELETE if conflict.device_deletes else Operation.UPSERT,
        captured_at=conflict.captured_at or conflict.created_at,
        base_version=conflict.server_version,
        fields=conflict.device_fields,
    )


def web_conflict(change: Change, current: Record | None, user_id: str, now: datetime) -> Conflict:
    """A web write on a stale version: answered, not stored (the manager re-reads and retries)."""
    server_fields = current.fields if current and not current.deleted else None
    return Conflict(
        id="",
        record_type=change.record_type,
        record_id=change.record_id,
        device_id="",
        rep_id=(current.owner if current else None) or "",
        offline_id=change.offline_id,
        base_version=change.base_version,
        server_version=current.version if current else 0,
        device_fields=change.fields,
        server_fields=server_fields,
        changed_fields=changed_fields(change.fields, server_fields),
        status=ConflictStatus.OPEN,
        created_at=now,
    )
