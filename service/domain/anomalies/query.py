"""Which flags a list asks for, and the page it gets: newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.domain.anomalies.flags import Anomaly, AnomalyCode, AnomalyStatus, Severity


@dataclass(frozen=True)
class AnomalyQuery:
    rep_id: str | None = None
    device_id: str | None = None
    codes: tuple[AnomalyCode, ...] = ()
    statuses: tuple[AnomalyStatus, ...] = ()
    severities: tuple[Severity, ...] = ()
    since: datetime | None = None  # flagged at or after
    until: datetime | None = None  # flagged before


@dataclass(frozen=True)
class AnomalyPage:
    anomalies: list[Anomaly]
    has_more: bool
    total: int


AnomalyCursor = tuple[datetime, str]  # (flaggedAt, id) of the last flag of the page before
