"""Prometheus text-format metrics for /metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from service.domain.outcomes import ChangeStatus


class Metrics:
    def __init__(self) -> None:
        self.pushes = 0
        self.changes: Counter[str] = Counter()
        self.gauges: dict[str, Callable[[], float]] = {}

    def count_push(self, statuses: Iterable[ChangeStatus]) -> None:
        self.pushes += 1
        self.changes.update(status.value for status in statuses)

    def render(self) -> str:
        lines = [
            "# TYPE fieldsync_pushes_total counter",
            f"fieldsync_pushes_total {self.pushes}",
            "# TYPE fieldsync_changes_total counter",
        ]
        lines += [f'fieldsync_changes_total{{status="{s.value}"}} {self.changes[s.value]}' for s in ChangeStatus]
        for name, read in sorted(self.gauges.items()):
            lines += [f"# TYPE {name} gauge", f"{name} {read()}"]
        return "\n".join(lines) + "\n"
