"""Device and rep sync health: what a manager should look at first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum


class HealthStatus(Enum):
    HEALTHY = "HEALTHY"
    NEEDS_ATTENTION = "NEEDS_ATTENTION"  # open refusals or conflicts
    STALE = "STALE"  # no sync for too long
    BACKLOGGED = "BACKLOGGED"  # the reported queue has not gone down for too long, or photos have not followed


# Worst first: what a manager acts on before anything else.
SEVERITY = [HealthStatus.NEEDS_ATTENTION, HealthStatus.BACKLOGGED, HealthStatus.STALE, HealthStatus.HEALTHY]


@dataclass(frozen=True)
class HealthThresholds:
    stale_after: timedelta = timedelta(hours=24)
    backlog_after: timedelta = timedelta(hours=24)
    photo_pending_after: timedelta = timedelta(hours=24)  # a record's photo not uploaded this long is overdue


def device_health(
    *,
    last_sync_at: datetime | None,
    queue_growing_since: datetime | None,
    registered_at: datetime,
    open_problems: int,
    now: datetime,
    thresholds: HealthThresholds,
    overdue_photos: int = 0,
) -> HealthStatus:
    if open_problems:
        return HealthStatus.NEEDS_ATTENTION
    if queue_growing_since is not None and now - queue_growing_since >= thresholds.backlog_after:
        return HealthStatus.BACKLOGGED
    if overdue_photos:  # a photo backlog that does not shrink is as much an alert as a growing queue
        return HealthStatus.BACKLOGGED
    if now - (last_sync_at or registered_at) >= thresholds.stale_after:
        return HealthStatus.STALE
    return HealthStatus.HEALTHY


def worst(statuses: list[HealthStatus]) -> HealthStatus:
    return min(statuses, key=SEVERITY.index, default=HealthStatus.HEALTHY)
