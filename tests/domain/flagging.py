"""Flagging pushes in tests: changes go in as APPLIED, a device's baselines carry from push to push."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from service.domain.anomalies import (
    Anomaly,
    AnomalyCode,
    AnomalyThresholds,
    Baselines,
    DeviceBaseline,
    PushFacts,
    RepBaseline,
    flag_push,
)
from service.domain.changes import Change
from service.domain.outcomes import ChangeStatus, Outcome
from service.domain.records import Record, RecordKey
from tests.factories import T0

_syncs = itertools.count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Phone:
    """One rep's device whose pushes are flagged one after another."""

    thresholds: AnomalyThresholds = field(default_factory=AnomalyThresholds)
    baselines: Baselines = field(default_factory=lambda: Baselines(RepBaseline("rep1"), DeviceBaseline("dev1")))

    def push(
        self,
        changes: list[Change],
        *,
        received: datetime | None = None,
        stored: Mapping[RecordKey, Record] | None = None,
        queue_depth: int | None = None,
        statuses: list[ChangeStatus] | None = None,
        sent_at: datetime | None = None,
    ) -> list[Anomaly]:
        received = received or max([c.captured_at for c in changes], default=T0) + timedelta(seconds=5)
        outcomes = [
            Outcome(c.offline_id, status)
            for c, status in zip(changes, statuses or [ChangeStatus.APPLIED] * len(changes), strict=True)
        ]
        facts = PushFacts(f"sync-{next(_syncs)}", "dev1", "rep1", received, queue_depth, sent_at)
        flagging = flag_push(changes, outcomes, stored or {}, self.baselines, facts, self.thresholds)
        self.baselines = flagging.baselines
        return flagging.anomalies

    def codes(self, changes: list[Change], **push: object) -> list[AnomalyCode]:
        return [a.code for a in self.push(changes, **push)]  # type: ignore[arg-type]
