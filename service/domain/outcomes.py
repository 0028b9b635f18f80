"""What the server decided about a change."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.domain.conflicts import Conflict
    from service.domain.records import Record
    from service.domain.refusals import Refusal


class ChangeStatus(Enum):
    APPLIED = "APPLIED"
    MERGED = "MERGED"
    UNCHANGED = "UNCHANGED"
    DUPLICATE = "DUPLICATE"
    CONFLICT = "CONFLICT"
    REFUSED = "REFUSED"
    BLOCKED = "BLOCKED"


# Statuses after which the (device, offlineId) is decided for good: a retry is a DUPLICATE.
FINAL = {ChangeStatus.APPLIED, ChangeStatus.MERGED, ChangeStatus.UNCHANGED, ChangeStatus.CONFLICT}


@dataclass(frozen=True)
class Outcome:
    offline_id: str
    status: ChangeStatus
    record: Record | None = None
    conflict: Conflict | None = None
    refusal: Refusal | None = None
    blocked_by: str | None = None
    duplicate_of: ChangeStatus | None = None  # DUPLICATE: what was decided the first time
    crdt_diff: bytes | None = None  # SHARED: what the device lacks
    stored: bool = False  # ``record`` is to be written (a new version, or an UNCHANGED write the merge rule keeps)
