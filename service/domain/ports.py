"""What the sync engine needs from storage; ``service.store`` implements it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from service.domain.anomalies import Anomaly, Baselines
from service.domain.anomalies.query import AnomalyCursor, AnomalyPage, AnomalyQuery
from service.domain.changes import Change
from service.domain.conflicts import Conflict
from service.domain.history import SyncEvent
from service.domain.push_plan import PushPlan, PushSnapshot
from service.domain.records import Record, RecordKey
from service.domain.refusals import Refusal
from service.domain.scope import ScopeRepository
from service.domain.scope_exits import ScopeExit


class RevokedSince(Exception):
    """A token or device was revoked after the caller's token was last checked: check it again."""


@dataclass(frozen=True)
class SyncInfo:
    """The push session a plan belongs to."""

    sync_id: str
    device_id: str
    rep_id: str
    app_version: str | None
    received_at: datetime
    queue_depth: int | None = None
    is_push: bool = True  # False: a status report, which updates the device only
    sent_at: datetime | None = None  # the device's clock when it sent the push
    revocations_seen: int | None = None  # when the caller's token was last checked; the commit confirms it


@dataclass(frozen=True)
class Committed:
    records: dict[RecordKey, Record]  # what was written, with sequence numbers
    events: list[SyncEvent]  # what was recorded, with ids
    device: Any = None  # the device after a push or status report, as the store keeps it (None: not known)
    refusals: Mapping[str, Refusal] = field(default_factory=dict)  # by id, as written
    anomalies: Mapping[str, Anomaly] = field(default_factory=dict)  # by id, as written
    numbers: range = range(0)  # the global sequence numbers it took (records, scope exits, events)


EventSink = Callable[[Committed], None]  # told of each commit, to publish its events


@dataclass(frozen=True)
class PullPage:
    records: list[Record | ScopeExit]  # in cursor order; a ScopeExit: the record left the rep's scope
    last_seq: int
    has_more: bool


class SyncRepository(ScopeRepository, Protocol):
    async def in_transaction[T](self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(tx)`` as one unit of work, again from the start on a write conflict."""
        ...

    async def load_push_snapshot(self, sync: SyncInfo, at: datetime, changes: list[Change], tx: Any) -> PushSnapshot:
        """What deciding ``changes`` needs; first records that the device synced ``at``."""
        ...

    async def commit(self, plan: PushPlan, sync: SyncInfo | None, tx: Any) -> Committed:
        """Write a plan's records, receipts, conflicts, refusals and events together."""
        ...

    async def get_conflict(self, conflict_id: str, tx: Any = None) -> Conflict | None: ...

    async def get_refusal(self, refusal_id: str, tx: Any = None) -> Refusal | None: ...

    async def load_baselines(self, rep_id: str, device_id: str, tx: Any) -> Baselines:
        """What flagging learned of the rep and the device (one read)."""
        ...

    async def get_anomaly(self, anomaly_id: str, tx: Any = None) -> Anomaly | None: ...

    async def get_anomalies(self, anomaly_ids: list[str]) -> dict[str, Anomaly]: ...

    async def anomaly_page(self, query: AnomalyQuery, after: AnomalyCursor | None, limit: int) -> AnomalyPage: ...

    async def pull_page(
        self,
        rep_id: str,
        after_seq: int,
        watermark: int | None,
        limit: int,
        window: tuple[datetime, datetime],
        revocations_seen: int | None = None,
        head: int | None = None,
    ) -> PullPage:
        """``window``: closed visits and work orders an initial sync carries happen within it.
        ``revocations_seen``: confirmed with the page's first read (RevokedSince). ``head``: the
        sequence's head when the caller has just read it (then that was the page's first read)."""
        ...

    async def current_seq(self, revocations_seen: int | None = None) -> int: ...
