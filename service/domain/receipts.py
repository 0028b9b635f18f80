"""Receipts: what the server has decided for each (device, offlineId)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.domain.outcomes import FINAL, ChangeStatus
from service.domain.record_types import RecordType


@dataclass(frozen=True)
class Receipt:
    device_id: str
    offline_id: str
    status: ChangeStatus  # the last answer given
    attempts: int  # how many times this offlineId arrived
    at: datetime
    record_type: RecordType | None = None
    record_id: str | None = None
    version: int | None = None  # the record version this change produced or met
    conflict_id: str | None = None
    digest: str | None = None  # of the change first decided under this offlineId

    @property
    def decided(self) -> bool:
        return self.status in FINAL
