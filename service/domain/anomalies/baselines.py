"""What flagging remembers of each rep and device between pushes, learned from their own history.

Stored (one document per rep and per device) and read in one query per push chunk,
so a restart keeps every baseline. Detectors update a working copy; the push writes it back.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

MAD_SCALE = 1.4826  # a normal distribution's standard deviation from its median absolute deviation


@dataclass(frozen=True)
class GeoStamp:
    latitude: float
    longitude: float
    at: datetime  # the device's capture time
    outlet_id: str | None
    label: str  # the record it was stamped on, as a manager reads it ("visit v1")

    @cached_property
    def place(self) -> tuple[int, int]:
        """The coordinates to the micro-degree (about 10 cm): equal places are the very same fix."""
        return round(self.latitude * 1e6), round(self.longitude * 1e6)


@dataclass(frozen=True)
class RecentOrder:
    offline_id: str
    record_id: str
    outlet_id: str
    lines: str  # the lines, canonical: same products and quantities in any order say the same
    captured_at: datetime


@dataclass
class RepBaseline:
    rep_id: str
    delays: list[float] = field(default_factory=list)  # hours, the oldest change of each push, oldest push first
    delay_sync: str | None = None  # the push the last delay belongs to (a push comes in chunks)
    orders: list[RecentOrder] = field(default_factory=list)  # within the duplicate window


@dataclass
class DeviceBaseline:
    device_id: str
    trusted: GeoStamp | None = None  # the last stamp consistent with the ones before
    suspect: GeoStamp | None = None  # a stamp that jumped: an outlier, or where the device now is
    stamps: list[GeoStamp] = field(default_factory=list)  # recent distinct stamps (GEO_REPEATED)
    skews: list[float] = field(default_factory=list)  # minutes ahead (+) or behind (-), one per push
    skew_flagged: bool = False  # flagged, until the clock agrees with the server again
    queue_depth: int | None = None
    queue_since: datetime | None = None  # when the reported queue stopped going down
    queue_since_depth: int | None = None  # its depth then
    queue_flagged: bool = False  # flagged, until the queue goes down


@dataclass(frozen=True)
class Spread:
    """A robust summary of a baseline: median and median absolute deviation."""

    median: float
    mad: float
    samples: int

    def line(self, mads: float, floor: float) -> float:
        return max(floor, self.median + mads * MAD_SCALE * self.mad)


def spread(values: list[float]) -> Spread:
    median = statistics.median(values)
    return Spread(median, statistics.median(abs(value - median) for value in values), len(values))


@dataclass
class Baselines:
    """One push's rep and device, as flagging found and leaves them."""

    rep: RepBaseline
    device: DeviceBaseline
