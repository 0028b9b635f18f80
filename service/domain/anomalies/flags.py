"""Anomaly flags: valid data that looks wrong in context, flagged beside the change, never blocking it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from service.domain.composite_ids import composite_id
from service.domain.record_types import RecordType


class AnomalyCode(Enum):
    GEO_JUMP = "GEO_JUMP"  # consecutive geo-stamps of a device need an implausible speed
    GEO_NULL_ISLAND = "GEO_NULL_ISLAND"  # a geo-stamp at 0, 0: a phone without a fix
    GEO_REPEATED = "GEO_REPEATED"  # the very same coordinates stamped at different outlets
    SYNC_DELAY = "SYNC_DELAY"  # capture to receipt far above the rep's own baseline
    QUEUE_GROWING = "QUEUE_GROWING"  # a device's queue has grown for days
    CONTRADICTION = "CONTRADICTION"  # an event that contradicts an earlier one
    CONTENT_DUPLICATE = "CONTENT_DUPLICATE"  # the same order under another offlineId
    CLOCK_SKEW = "CLOCK_SKEW"  # a device's clock consistently ahead of or behind the server's


class Severity(Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"  # an open HIGH flag puts its rep in NEEDS_ATTENTION


class AnomalyStatus(Enum):
    OPEN = "OPEN"
    CONFIRMED = "CONFIRMED"  # a manager agrees: the data is wrong
    DISMISSED = "DISMISSED"  # a manager decided it is fine


@dataclass(frozen=True)
class Finding:
    """What a detector saw, before it is tied to its push."""

    code: AnomalyCode
    severity: Severity
    reason: str  # one sentence naming the data, the numbers and the line they crossed
    evidence: dict[str, Any]
    change_index: int | None = None  # the change of the push it concerns, if one


@dataclass(frozen=True)
class Anomaly:
    id: str
    code: AnomalyCode
    severity: Severity
    reason: str
    evidence: dict[str, Any]
    rep_id: str
    device_id: str
    flagged_at: datetime
    status: AnomalyStatus = AnomalyStatus.OPEN
    sync_id: str | None = None
    record_type: RecordType | None = None
    record_id: str | None = None
    offline_id: str | None = None
    captured_at: datetime | None = None
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    note: str | None = None


def anomaly_id(device_id: str, about: str, code: AnomalyCode) -> str:
    """One flag per code and change (``about``: its offlineId) or per code and push (the sync id)."""
    return composite_id(device_id, about, code.value)
