"""How flags name data, instants and spans in their sentences."""

from __future__ import annotations

from datetime import UTC, datetime

from service.domain.changes import Change


def subject(change: Change) -> str:
    """``Visit v1``, ``Work order w2``."""
    return f"{change.record_type.value.replace('_', ' ').capitalize()} {change.record_id}"


def when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def span(hours: float) -> str:
    """A duration a person reads at a glance: seconds, minutes, hours or days."""
    seconds = abs(hours) * 3600
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes"
    if hours < 48:
        return f"{abs(hours):.1f} h"
    return f"{abs(hours) / 24:.1f} days"


def place(latitude: float, longitude: float) -> str:
    return f"{latitude:.6f}, {longitude:.6f}"
