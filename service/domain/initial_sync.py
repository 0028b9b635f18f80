"""What an initial sync carries of a rep's visits and work orders (seed 001, FieldKo).

Not the rep's whole history: its open visits and work orders, plus those that
happen in a window around today (by default the past 7 days and the next 14).
Pull deltas after the initial sync still carry every change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from service.domain.record_types import RecordType

WINDOWED = (RecordType.VISIT, RecordType.WORK_ORDER)
OPEN_STATUSES = ("PLANNED", "CHECKED_IN", "OPEN", "IN_PROGRESS")  # visits' and work orders' open statuses
_WHEN = {RecordType.VISIT: ("plannedAt", "checkInAt", "completedAt"), RecordType.WORK_ORDER: ("completedAt",)}


@dataclass(frozen=True)
class InitialWindow:
    past: timedelta = timedelta(days=7)
    future: timedelta = timedelta(days=14)

    def around(self, now: datetime) -> tuple[datetime, datetime]:
        return now - self.past, now + self.future


def happens_at(record_type: RecordType, fields: Mapping[str, Any]) -> datetime | None:
    """When a visit (planned, else checked in or completed) or a work order (completed) happens, in UTC."""
    for name in _WHEN.get(record_type, ()):
        value = fields.get(name)
        if not isinstance(value, str):
            continue
        try:
            stamp = datetime.fromisoformat(value)
            if stamp.utcoffset() is not None:
                return stamp.astimezone(UTC)
        except (ValueError, OverflowError):
            continue
    return None
