"""Flagging a decided push: its changes and outcomes + what was stored + baselines -> flags. Pure, no I/O.

Only changes whose data went in (APPLIED, MERGED) are looked at and learned from; a refused,
blocked or duplicate change is not (a blocked one is, when it goes in).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.domain.anomalies.baselines import Baselines
from service.domain.anomalies.clock import check_clock, read_clock, reading
from service.domain.anomalies.contradictions import check_contradiction
from service.domain.anomalies.delay import check_delay, check_queue
from service.domain.anomalies.duplicates import check_duplicate
from service.domain.anomalies.flags import Anomaly, Finding, anomaly_id
from service.domain.anomalies.geo import check_stamp, stamp_of
from service.domain.anomalies.thresholds import AnomalyThresholds
from service.domain.changes import Change
from service.domain.outcomes import ChangeStatus, Outcome
from service.domain.records import Record, RecordKey

LOOKED_AT = frozenset({ChangeStatus.APPLIED, ChangeStatus.MERGED})


@dataclass(frozen=True)
class PushFacts:
    sync_id: str
    device_id: str
    rep_id: str
    received_at: datetime
    queue_depth: int | None = None
    sent_at: datetime | None = None  # the device's clock when it sent the push, when it says


@dataclass(frozen=True)
class Flagging:
    anomalies: list[Anomaly]
    baselines: Baselines  # updated: the push writes them back


def looks_at(outcomes: Sequence[Outcome], facts: PushFacts) -> bool:
    """Whether any detector looks at a push (``flag_push``'s conditions): if none does, the push
    raises no flag and learns nothing, so its baselines need not be read or written."""
    return facts.sent_at is not None or facts.queue_depth is not None or any(o.status in LOOKED_AT for o in outcomes)


def flag_push(
    changes: Sequence[Change],
    outcomes: Sequence[Outcome],
    stored: Mapping[RecordKey, Record],
    baselines: Baselines,
    facts: PushFacts,
    thresholds: AnomalyThresholds,
) -> Flagging:
    """``stored``: the records as loaded before the push was decided."""
    # Detectors replace the baselines' fields (lists included), never change them in place: shallow copies do.
    rep, device = dataclasses.replace(baselines.rep), dataclasses.replace(baselines.device)
    view = dict(stored)
    findings: list[Finding | None] = []
    looked_at: list[int] = []
    for index, (change, outcome) in enumerate(zip(changes, outcomes, strict=True)):
        before = view.get(change.key)
        if outcome.stored and outcome.record is not None:
            view[change.key] = outcome.record
        if outcome.status not in LOOKED_AT:
            continue
        looked_at.append(index)
        stamp = stamp_of(change, before)
        for finding in (
            check_stamp(stamp, device, thresholds) if stamp is not None else None,
            check_contradiction(change, before, view, facts.rep_id),
            check_duplicate(change, before, rep, thresholds),
        ):
            if finding is not None:
                findings.append(Finding(finding.code, finding.severity, finding.reason, finding.evidence, index))
    if looked_at:
        oldest = min(looked_at, key=lambda i: changes[i].captured_at)
        findings.append(check_delay(changes[oldest], oldest, facts.received_at, facts.sync_id, rep, thresholds))
        if facts.sent_at is None:
            minutes, at = reading([(changes[i], stored.get(changes[i].key)) for i in looked_at], facts.received_at)
            findings.append(check_clock(minutes, looked_at[at], device, thresholds))
    if facts.sent_at is not None:  # the device's own clock, read directly: ahead or behind
        findings.append(check_clock(read_clock(facts.sent_at, facts.received_at), None, device, thresholds))
    if facts.queue_depth is not None:
        findings.append(check_queue(facts.queue_depth, facts.received_at, device, thresholds))
    anomalies = [_anomaly(finding, changes, facts) for finding in findings if finding is not None]
    return Flagging(anomalies, Baselines(rep, device))


def _anomaly(finding: Finding, changes: Sequence[Change], facts: PushFacts) -> Anomaly:
    change = changes[finding.change_index] if finding.change_index is not None else None
    return Anomaly(
        id=anomaly_id(facts.device_id, change.offline_id if change else facts.sync_id, finding.code),
        code=finding.code,
        severity=finding.severity,
        reason=finding.reason,
        evidence=finding.evidence,
        rep_id=facts.rep_id,
        device_id=facts.device_id,
        flagged_at=facts.received_at,
        sync_id=facts.sync_id,
        record_type=change.record_type if change else None,
        record_id=change.record_id if change else None,
        offline_id=change.offline_id if change else None,
        captured_at=change.captured_at if change else None,
    )
