"""Anomaly flags: data valid on its own but suspicious in context (docs/anomalies.md)."""

from service.domain.anomalies.baselines import Baselines, DeviceBaseline, RepBaseline
from service.domain.anomalies.detect import Flagging, PushFacts, flag_push, looks_at
from service.domain.anomalies.flags import Anomaly, AnomalyCode, AnomalyStatus, Severity
from service.domain.anomalies.review import NotReviewable, flagged_event, review, reviewed_event
from service.domain.anomalies.thresholds import AnomalyThresholds

__all__ = [
    "Anomaly",
    "AnomalyCode",
    "AnomalyStatus",
    "AnomalyThresholds",
    "Baselines",
    "DeviceBaseline",
    "Flagging",
    "NotReviewable",
    "PushFacts",
    "RepBaseline",
    "Severity",
    "flag_push",
    "flagged_event",
    "looks_at",
    "review",
    "reviewed_event",
]
