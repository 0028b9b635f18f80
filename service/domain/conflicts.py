"""Conflicts on single-owner records and how a rep resolves them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from service.domain.record_types import RecordType


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


def changed_fields(device: dict[str, Any] | None, server: dict[str, Any] | None) -> list[str]:
    """Field names whose values differ between the two versions."""
    device, server = device or {}, server or {}
    return sorted(name for name in device.keys() | server.keys() if device.get(name) != server.get(name))
