"""Sync history: one event per thing that happened, written with the change it describes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from service.domain.record_types import RecordType

# Actions beyond ChangeStatus values.
PUSH_REFUSED = "PUSH_REFUSED"
CONFLICT_OVERWRITTEN = "CONFLICT_OVERWRITTEN"
CONFLICT_DISCARDED = "CONFLICT_DISCARDED"
REFUSAL_RESOLVED = "REFUSAL_RESOLVED"
REFUSAL_ACKNOWLEDGED = "REFUSAL_ACKNOWLEDGED"
REFUSAL_DISMISSED = "REFUSAL_DISMISSED"
RECORD_WRITTEN = "RECORD_WRITTEN"  # a manager's writeRecord
PUSH = "PUSH"  # a device pushed (one per committed batch of a push)
STATUS_REPORTED = "STATUS_REPORTED"  # a device reported its queue depth
UPLOAD_COMPLETED = "UPLOAD_COMPLETED"  # a photo's upload finished (detail: attachmentId, sha256, size, durationMs)
ANOMALY_FLAGGED = "ANOMALY_FLAGGED"  # a change or push was flagged (detail: anomalyId, code, severity)
ANOMALY_CONFIRMED = "ANOMALY_CONFIRMED"  # a manager confirmed a flag (detail: anomalyId, code, note)
ANOMALY_DISMISSED = "ANOMALY_DISMISSED"  # a manager dismissed a flag (detail: anomalyId, code, note)


class SyncAction(Enum):
    """Every kind of event in the history: a change outcome, or what else happened."""

    APPLIED = "APPLIED"
    MERGED = "MERGED"
    UNCHANGED = "UNCHANGED"
    DUPLICATE = "DUPLICATE"
    CONFLICT = "CONFLICT"
    REFUSED = "REFUSED"
    BLOCKED = "BLOCKED"
    PUSH = PUSH
    STATUS_REPORTED = STATUS_REPORTED
    PUSH_REFUSED = PUSH_REFUSED
    CONFLICT_OVERWRITTEN = CONFLICT_OVERWRITTEN
    CONFLICT_DISCARDED = CONFLICT_DISCARDED
    REFUSAL_RESOLVED = REFUSAL_RESOLVED
    REFUSAL_ACKNOWLEDGED = REFUSAL_ACKNOWLEDGED
    REFUSAL_DISMISSED = REFUSAL_DISMISSED
    RECORD_WRITTEN = RECORD_WRITTEN
    UPLOAD_COMPLETED = UPLOAD_COMPLETED
    ANOMALY_FLAGGED = ANOMALY_FLAGGED
    ANOMALY_CONFIRMED = ANOMALY_CONFIRMED
    ANOMALY_DISMISSED = ANOMALY_DISMISSED


@dataclass(frozen=True)
class SyncEvent:
    action: str
    at: datetime
    sync_id: str | None = None
    device_id: str | None = None
    rep_id: str | None = None
    actor_id: str | None = None
    offline_id: str | None = None
    record_type: RecordType | None = None
    record_id: str | None = None
    attempt: int | None = None
    version_before: int | None = None
    version_after: int | None = None
    utc_offset_minutes: int | None = None  # the device's offset when it captured the change
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # its place in the global sequence, given when stored
