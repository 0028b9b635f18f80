"""The daily sync report: which UTC instants a local day spans, and what happened in it.

Pure: the store counts (in the database) and lists devices; this module turns
those numbers into the report a manager or an integrator reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from service.domain import history
from service.domain.outcomes import ChangeStatus

# Every action, in the order a report lists them.
ACTIONS: tuple[str, ...] = (
    *(status.value for status in ChangeStatus),
    history.PUSH,
    history.STATUS_REPORTED,
    history.PUSH_REFUSED,
    history.CONFLICT_OVERWRITTEN,
    history.CONFLICT_DISCARDED,
    history.REFUSAL_RESOLVED,
    history.REFUSAL_ACKNOWLEDGED,
    history.REFUSAL_DISMISSED,
    history.RECORD_WRITTEN,
    history.UPLOAD_COMPLETED,
    history.ANOMALY_FLAGGED,
    history.ANOMALY_CONFIRMED,
    history.ANOMALY_DISMISSED,
)

# The words of a classic CRM synchronization summary (seed 003) for each action.
LABELS: dict[str, str] = {
    ChangeStatus.APPLIED.value: "Updated",
    ChangeStatus.MERGED.value: "Merged",
    ChangeStatus.UNCHANGED.value: "No difference",
    ChangeStatus.DUPLICATE.value: "No new changes",
    ChangeStatus.CONFLICT.value: "Field conflict",
    ChangeStatus.REFUSED.value: "Validation error",
    ChangeStatus.BLOCKED.value: "Deferred",
    history.PUSH: "Sync session",
    history.STATUS_REPORTED: "Status reported",
    history.PUSH_REFUSED: "Unable to update",
    history.CONFLICT_OVERWRITTEN: "Conflict resolved: overwritten",
    history.CONFLICT_DISCARDED: "Conflict resolved: discarded",
    history.REFUSAL_RESOLVED: "Validation error resolved",
    history.REFUSAL_ACKNOWLEDGED: "Validation error acknowledged",
    history.REFUSAL_DISMISSED: "Validation error dismissed",
    history.RECORD_WRITTEN: "Updated on the web",
    history.UPLOAD_COMPLETED: "Photo uploaded",
    history.ANOMALY_FLAGGED: "Anomaly flagged",
    history.ANOMALY_CONFIRMED: "Anomaly confirmed",
    history.ANOMALY_DISMISSED: "Anomaly dismissed",
}

_NOT_ZONES = frozenset({"localtime", "posixrules"})  # files in the zone database that name no zone


class UnknownTimezone(ValueError):
    """The name is not an IANA time zone this server knows."""


def label(action: str) -> str:
    return LABELS.get(action, action.replace("_", " ").capitalize())


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (exact spelling, e.g. ``America/New_York``)."""
    if name in _zone_names():
        return ZoneInfo(name)
    close = sorted(known for known in _zone_names() if known.lower() == name.lower())
    hint = f"; did you mean {close[0]!r}?" if close else " (use an IANA name such as 'America/New_York' or 'UTC')"
    raise UnknownTimezone(f"unknown timezone {name[:64]!r}{hint}")


@dataclass(frozen=True)
class DayWindow:
    """A local calendar day as the UTC half-open interval [start, end)."""

    day: date
    timezone: str
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        """24, or 23 / 25 (or 23.5 ...) on the days a zone changes its clocks."""
        return (self.end - self.start) / timedelta(hours=1)


def day_window(day: date, timezone: str) -> DayWindow:
    """From local midnight to the next local midnight, in UTC.

    A midnight that falls in a DST gap starts the day at the transition; a
    midnight that happens twice starts it at the first one (``fold=0``).
    """
    tz = zone(timezone)
    try:
        start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{day.isoformat()} is outside the dates a report can cover") from None
    return DayWindow(day, timezone, start, end)


@dataclass(frozen=True)
class ActionTally:
    """How many events of ``action`` a rep had in the window (counted by the store)."""

    rep_id: str | None
    action: str
    count: int


@dataclass(frozen=True)
class FlagTally:
    """How many flags of ``code`` a rep got in the window (counted by the store)."""

    rep_id: str
    code: str
    count: int


@dataclass(frozen=True)
class DeviceRegistration:
    device_id: str
    rep_id: str
    registered_at: datetime
    revoked_at: datetime | None = None

    def expected_in(self, window: DayWindow) -> bool:
        """Registered before the day ended and not revoked before it ended: expected to sync that day."""
        return self.registered_at < window.end and (self.revoked_at is None or self.revoked_at >= window.end)


@dataclass(frozen=True)
class ActionCount:
    action: str
    count: int

    @property
    def label(self) -> str:
        return label(self.action)


@dataclass(frozen=True)
class CodeCount:
    code: str
    count: int


def code_counts(tallies: Iterable[FlagTally]) -> tuple[CodeCount, ...]:
    """Counts per code, codes in name order."""
    counts: dict[str, int] = {}
    for tally in tallies:
        counts[tally.code] = counts.get(tally.code, 0) + tally.count
    return tuple(CodeCount(code, count) for code, count in sorted(counts.items()))


@dataclass(frozen=True)
class RepDay:
    rep_id: str
    actions: tuple[ActionCount, ...]  # only the actions that happened
    devices_synced: tuple[str, ...]
    devices_silent: tuple[str, ...]
    anomalies: tuple[CodeCount, ...] = ()  # flags raised that day, by code

    @property
    def total(self) -> int:
        return sum(count.count for count in self.actions)


@dataclass(frozen=True)
class DailyReport:
    window: DayWindow
    actions: tuple[ActionCount, ...]  # every action, zeros included, in ACTIONS order
    reps: tuple[RepDay, ...]  # by rep id
    devices_synced: tuple[str, ...]
    devices_silent: tuple[str, ...]
    anomalies: tuple[CodeCount, ...] = ()  # flags raised that day, by code, over every rep

    @property
    def total(self) -> int:
        return sum(count.count for count in self.actions)


def build_report(
    window: DayWindow,
    tallies: Iterable[ActionTally],
    pushed: Iterable[tuple[str, str | None]],
    devices: Iterable[DeviceRegistration],
    flags: Iterable[FlagTally] = (),
) -> DailyReport:
    """The day's report from the store's counts.

    ``pushed`` are the (device, rep) pairs with a PUSH event in the window;
    ``devices`` every registered device in scope. A device is silent when it
    was expected to sync that day (``DeviceRegistration.expected_in``) and did not.
    """
    totals: dict[str, int] = dict.fromkeys(ACTIONS, 0)
    per_rep: dict[str, dict[str, int]] = {}
    for tally in tallies:
        totals[tally.action] = totals.get(tally.action, 0) + tally.count
        if tally.rep_id is not None:
            counts = per_rep.setdefault(tally.rep_id, {})
            counts[tally.action] = counts.get(tally.action, 0) + tally.count
    synced: dict[str, set[str]] = {}
    synced_ids: set[str] = set()
    for device_id, rep_id in pushed:
        synced_ids.add(device_id)
        if rep_id is not None:
            synced.setdefault(rep_id, set()).add(device_id)
    silent: dict[str, set[str]] = {}
    for device in devices:
        if device.expected_in(window) and device.device_id not in synced_ids:
            silent.setdefault(device.rep_id, set()).add(device.device_id)
    order = {action: n for n, action in enumerate(ACTIONS)}
    flags = list(flags)
    reps = tuple(
        RepDay(
            rep_id=rep_id,
            actions=tuple(
                ActionCount(action, count)
                for action, count in sorted(per_rep.get(rep_id, {}).items(), key=lambda i: order.get(i[0], len(order)))
                if count
            ),
            devices_synced=tuple(sorted(synced.get(rep_id, ()))),
            devices_silent=tuple(sorted(silent.get(rep_id, ()))),
            anomalies=code_counts(f for f in flags if f.rep_id == rep_id),
        )
        for rep_id in sorted(per_rep.keys() | synced.keys() | silent.keys() | {f.rep_id for f in flags})
    )
    return DailyReport(
        window=window,
        actions=tuple(ActionCount(action, count) for action, count in totals.items()),
        reps=reps,
        devices_synced=tuple(sorted(synced_ids)),
        devices_silent=tuple(sorted(device for devices in silent.values() for device in devices)),
        anomalies=code_counts(flags),
    )
