"""Refusals: changes (or whole pushes) the server would not accept, and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from service.domain.composite_ids import composite_id
from service.domain.record_types import RecordType
from service.domain.records import RecordKey


class RefusalKind(Enum):
    RECORD = "RECORD"
    PUSH = "PUSH"


class RefusalStatus(Enum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    DISMISSED = "DISMISSED"


class RefusalAction(Enum):
    FIX_DATA = "FIX_DATA"  # someone fixes the data behind it; blocks until then
    ACKNOWLEDGE = "ACKNOWLEDGE"  # cannot be fixed by data; the rep acknowledges; blocks nothing


@dataclass(frozen=True)
class Verdict:
    """A rule's answer: why a change cannot be accepted."""

    code: str
    reason: str
    action: RefusalAction
    field: str | None = None
    related: RecordKey | None = None


@dataclass(frozen=True)
class Refusal:
    id: str
    kind: RefusalKind
    code: str
    reason: str
    action: RefusalAction
    status: RefusalStatus
    created_at: datetime
    attempts: int = 1
    field: str | None = None
    related: RecordKey | None = None
    record_type: RecordType | None = None
    record_id: str | None = None
    offline_id: str | None = None
    device_id: str | None = None
    rep_id: str | None = None
    resolved_at: datetime | None = None
    note: str | None = None  # a manager's note on dismissing it
    change: dict[str, Any] | None = None  # RECORD: what the device sent, as it sent it

    @property
    def closed(self) -> bool:
        """Dismissed by a manager or acknowledged by the rep: decided for good, resends included."""
        return self.status in (RefusalStatus.DISMISSED, RefusalStatus.ACKNOWLEDGED)

    @property
    def blocks(self) -> bool:
        return self.status is RefusalStatus.OPEN and self.action is RefusalAction.FIX_DATA


def record_refusal_id(device_id: str, offline_id: str) -> str:
    """A refused change keeps one refusal however often it is retried."""
    return composite_id(device_id, offline_id)


def reused_refusal_id(device_id: str, offline_id: str, digest: str) -> str:
    """Other content under a used offlineId: its own refusal, leaving the offlineId's first one as it is."""
    return composite_id(device_id, offline_id, "reused", digest[:16])
