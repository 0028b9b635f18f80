"""SYNC_DELAY (a push's oldest change against the rep's own delays) and QUEUE_GROWING (a device's queue)."""

from __future__ import annotations

from datetime import datetime, timedelta

from service.domain.anomalies.baselines import DeviceBaseline, RepBaseline, spread
from service.domain.anomalies.flags import AnomalyCode, Finding, Severity
from service.domain.anomalies.thresholds import AnomalyThresholds
from service.domain.anomalies.wording import span, subject, when
from service.domain.changes import Change

DAYS = 24.0  # a delay of a day or more is HIGH: the dashboard is a day behind for this rep


def check_delay(
    oldest: Change, index: int, received_at: datetime, sync_id: str, rep: RepBaseline, t: AnomalyThresholds
) -> Finding | None:
    """Flag the push whose oldest change took far longer than the rep's pushes do; learn its delay."""
    hours = max((received_at - oldest.captured_at).total_seconds() / 3600, 0.0)
    later_chunk = rep.delay_sync == sync_id and bool(rep.delays)
    earlier = rep.delays[:-1] if later_chunk else rep.delays  # the push's own delay is no baseline for it
    baseline = spread(earlier) if len(earlier) >= t.baseline_min_pushes else None
    line = baseline.line(t.delay_mads, t.delay_floor_hours) if baseline else t.delay_without_baseline_hours
    flagged_before = later_chunk and rep.delays[-1] > line  # an earlier chunk of this push was flagged
    _learn(rep, hours, sync_id, t)
    if hours <= line or flagged_before:
        return None
    if baseline:
        usual = (
            f"this rep's usual {span(baseline.median)} (median of its last {baseline.samples} pushes, "
            f"MAD {span(baseline.mad)}; line {span(line)})"
        )
    else:
        usual = (
            f"the {span(line)} line for a rep with fewer than {t.baseline_min_pushes} pushes to learn from "
            f"(it has {len(earlier)})"
        )
    return Finding(
        AnomalyCode.SYNC_DELAY,
        Severity.HIGH if hours >= DAYS else Severity.MEDIUM,
        f"{subject(oldest)} reached the server {span(hours)} after it was captured ({when(oldest.captured_at)}), "
        f"far above {usual}: this rep's numbers on the dashboard are that late.",
        {
            "delayHours": round(hours, 3),
            "capturedAt": oldest.captured_at.isoformat(),
            "receivedAt": received_at.isoformat(),
            "baselineMedianHours": round(baseline.median, 3) if baseline else None,
            "baselineMadHours": round(baseline.mad, 3) if baseline else None,
            "baselinePushes": len(earlier),
            "lineHours": round(line, 3),
        },
        index,
    )


def _learn(rep: RepBaseline, hours: float, sync_id: str, t: AnomalyThresholds) -> None:
    """One delay per push: a later chunk of the same push keeps the larger."""
    if rep.delay_sync == sync_id and rep.delays:
        rep.delays = [*rep.delays[:-1], max(rep.delays[-1], hours)]
    else:
        rep.delays = [*rep.delays, hours][-t.baseline_pushes :]
    rep.delay_sync = sync_id


def check_queue(depth: int, now: datetime, device: DeviceBaseline, t: AnomalyThresholds) -> Finding | None:
    """Flag a queue that has not gone down for days and is larger than when it started growing."""
    before = device.queue_depth
    device.queue_depth = depth
    if depth == 0 or (before is not None and depth < before):
        device.queue_since, device.queue_since_depth, device.queue_flagged = None, None, False
        return None
    if device.queue_since is None or device.queue_since_depth is None:
        device.queue_since, device.queue_since_depth = now, before if before is not None else depth
        return None
    days = (now - device.queue_since) / timedelta(days=1)
    grown = depth - device.queue_since_depth
    if days < t.queue_growth_days or grown <= 0 or device.queue_flagged:
        return None
    device.queue_flagged = True
    return Finding(
        AnomalyCode.QUEUE_GROWING,
        Severity.HIGH if days >= 2 * t.queue_growth_days else Severity.MEDIUM,
        f"This device's queue has not gone down for {days:.1f} days (line {t.queue_growth_days:g}): from "
        f"{device.queue_since_depth} changes on {when(device.queue_since)} to {depth} now "
        f"(+{grown / days:.1f} a day); its changes are not reaching the server.",
        {
            "since": device.queue_since.isoformat(),
            "sinceDepth": device.queue_since_depth,
            "depth": depth,
            "days": round(days, 3),
            "perDay": round(grown / days, 2),
            "lineDays": t.queue_growth_days,
        },
    )
