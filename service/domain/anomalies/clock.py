"""CLOCK_SKEW: a device whose capture times run consistently ahead of or behind the server's.

Each push gives one reading, in minutes. A push that says when the device sent it
(``PushInput.sentAt``) is read directly: its send time minus the server's receipt (network
time is seconds; the line is minutes). Otherwise the changes tell what they can. Ahead: its
newest capture is later than the server received it (impossible on a right clock). Behind:
a change made on a version the server wrote at ``t`` says it was captured before ``t`` (the
device cannot have seen it then); a clock behind is otherwise indistinguishable from a late
sync. Failing both the push shows no skew (0). A device is flagged once its last
``clock_skew_pushes`` readings all lie beyond the line on the same side, and again only
after a reading within the line.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime

from service.domain.anomalies.baselines import DeviceBaseline
from service.domain.anomalies.flags import AnomalyCode, Finding, Severity
from service.domain.anomalies.thresholds import AnomalyThresholds
from service.domain.changes import Change
from service.domain.records import Record

HOUR = 60.0  # minutes: a clock an hour or more off is MEDIUM (a wrong time zone or DST setting)


def reading(changes: Iterable[tuple[Change, Record | None]], received_at: datetime) -> tuple[float, int]:
    """The push's skew in minutes (+ ahead, - behind, 0 none seen), and the change that shows it.

    ``changes``: each change with the stored record it was made on (loaded before the push).
    """
    ahead, behind, ahead_at, behind_at = 0.0, 0.0, 0, 0
    for index, (change, stored) in enumerate(changes):
        minutes = (change.captured_at - received_at).total_seconds() / 60
        if minutes > ahead:
            ahead, ahead_at = minutes, index
        if stored is not None and change.base_version == stored.version:
            late = (stored.updated_at - change.captured_at).total_seconds() / 60
            if late > behind:
                behind, behind_at = late, index
    if ahead >= behind:
        return ahead, ahead_at
    return -behind, behind_at


def read_clock(sent_at: datetime, received_at: datetime) -> float:
    """The skew a push's ``sentAt`` shows, in minutes (+ ahead, - behind)."""
    return (sent_at - received_at).total_seconds() / 60


def check_clock(minutes: float, index: int | None, device: DeviceBaseline, t: AnomalyThresholds) -> Finding | None:
    device.skews = [*device.skews, round(minutes, 2)][-t.clock_skew_pushes :]
    if abs(minutes) < t.clock_skew_minutes:
        device.skew_flagged = False
        return None
    recent = device.skews
    consistent = len(recent) == t.clock_skew_pushes and (
        all(m >= t.clock_skew_minutes for m in recent) or all(m <= -t.clock_skew_minutes for m in recent)
    )
    if not consistent or device.skew_flagged:
        return None
    device.skew_flagged = True
    typical = statistics.median(recent)
    side = "ahead of" if typical > 0 else "behind"
    shown = ", ".join(f"{abs(m):.0f}" for m in recent)
    return Finding(
        AnomalyCode.CLOCK_SKEW,
        Severity.MEDIUM if abs(typical) >= HOUR else Severity.LOW,
        f"This device's clock runs about {abs(typical):.0f} minutes {side} the server's: its last {len(recent)} "
        f"pushes showed {shown} minutes (line {t.clock_skew_minutes:g}); the times it records (check-ins, orders, "
        "hours) are off by as much.",
        {"minutes": typical, "readings": recent, "lineMinutes": t.clock_skew_minutes},
        index,
    )
