"""A manager's verdict on a flag, and the history events of flags."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from service.domain.anomalies.flags import Anomaly, AnomalyStatus
from service.domain.history import ANOMALY_CONFIRMED, ANOMALY_DISMISSED, ANOMALY_FLAGGED, SyncEvent

VERDICTS = {AnomalyStatus.CONFIRMED: ANOMALY_CONFIRMED, AnomalyStatus.DISMISSED: ANOMALY_DISMISSED}


class NotReviewable(ValueError):
    """A flag is confirmed or dismissed once; OPEN is no verdict."""


def flagged_event(anomaly: Anomaly) -> SyncEvent:
    return _event(ANOMALY_FLAGGED, anomaly, anomaly.flagged_at, anomaly.device_id)


def review(anomaly: Anomaly, verdict: AnomalyStatus, note: str | None, reviewer: str, now: datetime) -> Anomaly:
    if verdict not in VERDICTS:
        raise NotReviewable(f"a flag is marked {' or '.join(s.value for s in VERDICTS)}, not {verdict.value}")
    if anomaly.status is verdict:
        return anomaly  # the same verdict again (a retry): as it was
    if anomaly.status is not AnomalyStatus.OPEN:
        raise NotReviewable(f"flag {anomaly.id} was already {anomaly.status.value.lower()} by {anomaly.reviewed_by}")
    return dataclasses.replace(anomaly, status=verdict, note=note, reviewed_at=now, reviewed_by=reviewer)


def reviewed_event(anomaly: Anomaly) -> SyncEvent:
    assert anomaly.reviewed_at is not None
    return _event(VERDICTS[anomaly.status], anomaly, anomaly.reviewed_at, anomaly.reviewed_by)


def _event(action: str, anomaly: Anomaly, at: datetime, actor: str | None) -> SyncEvent:
    """Not part of a sync session's events (the flag keeps its ``syncId``): a push's events stay its outcomes."""
    detail: dict[str, object] = {
        "anomalyId": anomaly.id,
        "code": anomaly.code.value,
        "severity": anomaly.severity.value,
    }
    if anomaly.note and action != ANOMALY_FLAGGED:
        detail["note"] = anomaly.note
    return SyncEvent(
        action=action,
        at=at,
        device_id=anomaly.device_id,
        rep_id=anomaly.rep_id,
        actor_id=actor,
        offline_id=anomaly.offline_id,
        record_type=anomaly.record_type,
        record_id=anomaly.record_id,
        detail=detail,
    )
