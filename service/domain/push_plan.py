"""Deciding a whole push, change by change, in queue order. Pure, no I/O.

The shell loads a ``PushSnapshot`` in a few bulk reads, this module decides
every change against it (keeping a working view so later changes see earlier
ones), and the shell writes the resulting ``PushPlan`` in one unit of work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from crdt import CrdtDecodeError
from service.domain.anomalies import Anomaly, Baselines, Flagging, flagged_event
from service.domain.changes import Change
from service.domain.conflicts import Conflict, ConflictStatus, changed_fields
from service.domain.decide import Actor, decide_change
from service.domain.document_cache import ArchiveKey, WorkingDocuments
from service.domain.history import REFUSAL_RESOLVED, SyncEvent
from service.domain.outcomes import ChangeStatus, Outcome
from service.domain.receipts import Receipt
from service.domain.record_types import REFERENCES
from service.domain.records import Record, RecordKey
from service.domain.refusals import (
    Refusal,
    RefusalAction,
    RefusalKind,
    RefusalStatus,
    Verdict,
    record_refusal_id,
    reused_refusal_id,
)
from service.domain.rules import RuleSettings
from service.domain.scope import Scope
from service.domain.scope_exits import ScopeExit, scope_exits


class BlockingMode(Enum):
    QUEUE = "queue"  # a FIX_DATA refusal blocks everything after it on the device
    RECORD = "record"  # it blocks later changes to the same record and records referencing it


@dataclass
class PushSnapshot:
    """What deciding a push needs, loaded before deciding."""

    records: dict[RecordKey, Record]  # the changed records and the ones they reference
    receipts: dict[str, Receipt]  # by offlineId, for this push's offlineIds
    refusals: dict[str, Refusal]  # this device's refusals: this push's offlineIds and every open one
    conflicts: dict[str, Conflict]  # by id: this device's open conflicts and those receipts name
    left_scope: dict[RecordKey, str] = field(default_factory=dict)  # records that left the rep's scope -> assignee
    reused: dict[str, Refusal] = field(default_factory=dict)  # by id: refusals of other content under used offlineIds
    archives: dict[ArchiveKey, bytes] = field(default_factory=dict)  # earlier epochs this push's updates were made on


@dataclass(frozen=True)
class RecordWrite:
    record: Record
    expected_version: int | None  # the stored version this write replaces; None: a new record


@dataclass
class PushPlan:
    outcomes: list[Outcome] = field(default_factory=list)
    writes: dict[RecordKey, RecordWrite] = field(default_factory=dict)
    receipts: dict[str, Receipt] = field(default_factory=dict)  # by offlineId
    stored_receipts: frozenset[str] = frozenset()  # offlineIds whose receipt was stored before this push
    conflicts: list[Conflict] = field(default_factory=list)
    refusals: dict[str, Refusal] = field(default_factory=dict)  # by id, last state wins
    events: list[SyncEvent] = field(default_factory=list)
    scope_exits: list[ScopeExit] = field(default_factory=list)
    archives: dict[ArchiveKey, bytes] = field(default_factory=dict)  # CRDT states of ended epochs, new or grown
    anomalies: dict[str, Anomaly] = field(default_factory=dict)  # by id, last state wins
    baselines: Baselines | None = None  # what flagging learned, written back

    def write(self, record: Record, expected_version: int | None, left_scope_of: Iterable[str] = ()) -> None:
        """Write ``record`` over ``expected_version``; it leaves the scope of the reps ``left_scope_of``."""
        self.writes[record.key] = RecordWrite(record, expected_version)
        self.scope_exits += scope_exits(record, left_scope_of)

    def flag(self, flagging: Flagging) -> None:
        """Record the push's flags (each with its history event) and the baselines they learned."""
        self.baselines = flagging.baselines
        for anomaly in flagging.anomalies:
            self.anomalies[anomaly.id] = anomaly
            self.events.append(flagged_event(anomaly))


@dataclass
class _Blocks:
    """What stands in the way of later changes of this device."""

    mode: BlockingMode
    queue: str | None = None  # offlineId of the refused change blocking the queue
    records: dict[RecordKey, str] = field(default_factory=dict)  # record -> offlineId blocking it
    refused: dict[str, RecordKey] = field(default_factory=dict)  # open FIX_DATA refusals

    def add_refusal(self, offline_id: str, key: RecordKey) -> None:
        self.refused[offline_id] = key
        if self.mode is BlockingMode.QUEUE:
            self.queue = self.queue or offline_id
        else:
            self.records.setdefault(key, offline_id)

    def clear_refusal(self, offline_id: str) -> None:
        key = self.refused.pop(offline_id, None)
        if self.queue == offline_id:
            self.queue = next(iter(self.refused), None)
        if key is not None and self.records.get(key) == offline_id:
            del self.records[key]

    def blocker(self, change: Change) -> str | None:
        if change.offline_id in self.refused:
            return None  # the refused change itself: validated again
        if self.queue is not None:
            return self.queue
        for key in (change.key, *_referenced(change)):
            if key in self.records:
                return self.records[key]
        return None


def _referenced(change: Change) -> list[RecordKey]:
    return [key for key in change.references if key[0] in REFERENCES.get(change.record_type, {}).values()]


@dataclass
class PushContext:
    sync_id: str
    actor: Actor
    now: datetime
    settings: RuleSettings
    blocking: BlockingMode
    documents: WorkingDocuments
    new_id: object  # () -> str, ids for new conflicts
    scope: Scope  # what the device's rep may see and change


def plan_push(changes: list[Change], snapshot: PushSnapshot, context: PushContext) -> PushPlan:
    actor = context.actor
    assert actor.device_id is not None and actor.rep_id is not None
    plan = PushPlan(stored_receipts=frozenset(snapshot.receipts))
    view = dict(snapshot.records)
    loaded_versions = {key: record.version for key, record in snapshot.records.items()}
    blocks = _Blocks(context.blocking)
    context.documents.know_archives(snapshot.archives)
    resent = {change.offline_id for change in changes}
    for refusal in sorted(snapshot.refusals.values(), key=lambda r: r.created_at):
        # A refused change sent again is validated again where it stands in the queue;
        # one the device skipped blocks from the start of this push.
        if refusal.blocks and refusal.offline_id not in resent and refusal.record_type and refusal.record_id:
            blocks.add_refusal(str(refusal.offline_id), (refusal.record_type, refusal.record_id))
    for conflict in snapshot.conflicts.values():
        if conflict.status is ConflictStatus.OPEN:
            blocks.records.setdefault((conflict.record_type, conflict.record_id), conflict.offline_id)
    resolved = _resolved_bases(snapshot.conflicts.values(), actor.device_id)

    for change in changes:
        prior = snapshot.receipts.get(change.offline_id)
        attempt = (prior.attempts if prior else 0) + 1
        version_before = view[change.key].version if change.key in view else None
        outcome, left_scope_of = _decide(change, prior, view, snapshot, blocks, context, plan, resolved)
        record = outcome.record
        if outcome.stored and record is not None:
            view[record.key] = record
            plan.write(record, loaded_versions.get(record.key), left_scope_of)
        plan.outcomes.append(outcome)
        receipt = _receipt(change, prior, outcome, attempt, context)
        plan.receipts[change.offline_id] = snapshot.receipts[change.offline_id] = receipt
        if outcome.conflict is not None:
            snapshot.conflicts[outcome.conflict.id] = outcome.conflict
        plan.events.append(
            SyncEvent(
                action=outcome.status.value,
                at=context.now,
                sync_id=context.sync_id,
                device_id=actor.device_id,
                rep_id=actor.rep_id,
                actor_id=actor.writer,
                offline_id=change.offline_id,
                record_type=change.record_type,
                record_id=change.record_id,
                attempt=attempt,
                version_before=version_before,
                version_after=record.version if record is not None else None,
                utc_offset_minutes=_offset_minutes(change.captured_at),
                detail=_event_detail(outcome),
            )
        )
    plan.archives = context.documents.archives_to_write()
    return plan


def _resolved_bases(conflicts: Iterable[Conflict], device_id: str) -> dict[tuple[RecordKey, int | None], int]:
    """(record, version the device had) -> the version its conflict there was resolved to."""
    bases: dict[tuple[RecordKey, int | None], int] = {}
    for conflict in sorted(conflicts, key=lambda c: c.resolved_at or c.created_at):
        if conflict.device_id == device_id and conflict.resolved_version is not None:
            bases[((conflict.record_type, conflict.record_id), conflict.base_version)] = conflict.resolved_version
    return bases


def _decide(
    change: Change,
    prior: Receipt | None,
    view: dict[RecordKey, Record],
    snapshot: PushSnapshot,
    blocks: _Blocks,
    context: PushContext,
    plan: PushPlan,
    resolved: dict[tuple[RecordKey, int | None], int],
) -> tuple[Outcome, tuple[str, ...]]:
    """The outcome of one change, and the reps whose scope its write takes the record out of."""
    current = view.get(change.key)
    if prior is not None and prior.decided and prior.digest not in (None, change.digest):
        return _reused(change, prior, snapshot, context, plan), ()
    if prior is not None and prior.decided:
        return _duplicate(change, prior, current, snapshot, context), ()
    earlier = snapshot.refusals.get(change.offline_id)
    if earlier is not None and earlier.closed:
        # Dismissed or acknowledged: the device drops the change; nothing waits behind it.
        return Outcome(change.offline_id, ChangeStatus.REFUSED, refusal=earlier), ()
    blocker = blocks.blocker(change)
    if blocker is not None:
        return Outcome(change.offline_id, ChangeStatus.BLOCKED, blocked_by=blocker), ()

    # Changes made on the version the device had when its conflict was resolved go on from the resolution.
    base = resolved.get((change.key, change.base_version), change.base_version)
    on_base = change if base == change.base_version else dataclasses.replace(change, base_version=base)
    decision = decide_change(
        on_base,
        view,
        context.actor,
        context.settings,
        context.documents,
        context.now,
        left_scope=snapshot.left_scope,
        scope=context.scope,
    )
    if decision.status is ChangeStatus.REFUSED:
        assert decision.verdict is not None
        refusal = _refusal(change, decision.verdict, earlier, context)
        plan.refusals[refusal.id] = refusal
        snapshot.refusals[change.offline_id] = refusal
        if refusal.blocks:
            blocks.add_refusal(change.offline_id, change.key)
        return Outcome(change.offline_id, ChangeStatus.REFUSED, refusal=refusal), ()

    if earlier is not None and earlier.status is RefusalStatus.OPEN:
        resolved_refusal = dataclasses.replace(
            earlier, status=RefusalStatus.RESOLVED, resolved_at=context.now, attempts=earlier.attempts + 1
        )
        plan.refusals[resolved_refusal.id] = resolved_refusal
        snapshot.refusals[change.offline_id] = resolved_refusal
        blocks.clear_refusal(change.offline_id)
        plan.events.append(_refusal_event(REFUSAL_RESOLVED, earlier, change, context))

    if decision.status is ChangeStatus.CONFLICT:
        conflict = _conflict(on_base, decision.record, context)
        plan.conflicts.append(conflict)
        blocks.records.setdefault(change.key, change.offline_id)
        return Outcome(change.offline_id, ChangeStatus.CONFLICT, conflict=conflict, record=current), ()
    return (
        Outcome(
            change.offline_id,
            decision.status,
            record=decision.record,
            crdt_diff=decision.crdt_diff,
            stored=decision.written,
        ),
        decision.left_scope_of,
    )


def _reused(change: Change, prior: Receipt, snapshot: PushSnapshot, context: PushContext, plan: PushPlan) -> Outcome:
    """Other content under an offlineId already decided: refused in a refusal of its own."""
    assert context.actor.device_id is not None
    verdict = Verdict(
        "OFFLINE_ID_REUSED",
        f"offlineId {change.offline_id} was already used for another change (record {prior.record_id}); "
        "this one was not applied. The app must give every change its own offlineId.",
        RefusalAction.ACKNOWLEDGE,
        field="offlineId",
    )
    refusal_id = reused_refusal_id(context.actor.device_id, change.offline_id, change.digest)
    refusal = _refusal(change, verdict, snapshot.reused.get(refusal_id), context, refusal_id)
    plan.refusals[refusal.id] = snapshot.reused[refusal.id] = refusal
    return Outcome(change.offline_id, ChangeStatus.REFUSED, refusal=refusal)


def _duplicate(
    change: Change, prior: Receipt, current: Record | None, snapshot: PushSnapshot, context: PushContext
) -> Outcome:
    """The stored outcome again; the record only while it is still the rep's to see."""
    current = context.scope.shown(current)  # it may have left the rep's scope since (reassigned, unassigned)
    diff = None
    if current is not None and current.crdt_state is not None and change.made_on_epoch == current.crdt_epoch:
        try:
            diff = context.documents.get(change.key, current).missing_for(change.state_vector)
        except CrdtDecodeError:
            diff = None  # an unreadable state vector: the answer carries the whole state
    return Outcome(
        change.offline_id,
        ChangeStatus.DUPLICATE,
        record=current,
        conflict=snapshot.conflicts.get(prior.conflict_id or ""),
        duplicate_of=prior.status,
        crdt_diff=diff,
    )


def _refusal(
    change: Change, verdict: Verdict, earlier: Refusal | None, context: PushContext, refusal_id: str | None = None
) -> Refusal:
    actor = context.actor
    assert actor.device_id is not None
    return Refusal(
        id=refusal_id or record_refusal_id(actor.device_id, change.offline_id),
        kind=RefusalKind.RECORD,
        code=verdict.code,
        reason=verdict.reason,
        action=verdict.action,
        status=RefusalStatus.OPEN,
        created_at=earlier.created_at if earlier else context.now,
        attempts=(earlier.attempts + 1) if earlier else 1,
        field=verdict.field,
        related=verdict.related,
        record_type=change.record_type,
        record_id=change.record_id,
        offline_id=change.offline_id,
        device_id=actor.device_id,
        rep_id=actor.rep_id,
        change=change.as_sent(),
    )


def _conflict(change: Change, server: Record | None, context: PushContext) -> Conflict:
    actor = context.actor
    assert actor.device_id is not None and actor.rep_id is not None
    device_fields = None if change.fields is None else dict(change.fields)
    if device_fields is not None:
        device_fields.setdefault("repId", actor.rep_id)
    server_fields = None if server is None or server.deleted else server.fields
    return Conflict(
        id=str(context.new_id()),  # type: ignore[operator]
        record_type=change.record_type,
        record_id=change.record_id,
        device_id=actor.device_id,
        rep_id=actor.rep_id,
        offline_id=change.offline_id,
        base_version=change.base_version,
        server_version=server.version if server else 0,
        device_fields=device_fields,
        server_fields=server_fields,
        changed_fields=changed_fields(device_fields, server_fields),
        status=ConflictStatus.OPEN,
        created_at=context.now,
        device_deletes=change.operation.value == "DELETE",
        captured_at=change.captured_at,
    )


def _receipt(change: Change, prior: Receipt | None, outcome: Outcome, attempt: int, context: PushContext) -> Receipt:
    assert context.actor.device_id is not None
    if prior is not None and prior.decided:
        return dataclasses.replace(prior, attempts=attempt)
    record = outcome.record
    return Receipt(
        device_id=context.actor.device_id,
        offline_id=change.offline_id,
        status=outcome.status,
        attempts=attempt,
        at=context.now,
        record_type=change.record_type,
        record_id=change.record_id,
        version=record.version if record is not None else None,
        conflict_id=outcome.conflict.id if outcome.conflict else None,
        digest=change.digest,
    )


def _refusal_event(action: str, refusal: Refusal, change: Change, context: PushContext) -> SyncEvent:
    return SyncEvent(
        action=action,
        at=context.now,
        sync_id=context.sync_id,
        device_id=refusal.device_id,
        rep_id=refusal.rep_id,
        actor_id=context.actor.writer,
        offline_id=refusal.offline_id,
        record_type=refusal.record_type,
        record_id=refusal.record_id,
        utc_offset_minutes=_offset_minutes(change.captured_at),
        detail={"refusalId": refusal.id, "code": refusal.code},
    )


def _event_detail(outcome: Outcome) -> dict[str, object]:
    if outcome.refusal is not None:
        return {"refusalId": outcome.refusal.id, "code": outcome.refusal.code, "action": outcome.refusal.action.value}
    if outcome.conflict is not None:
        return {"conflictId": outcome.conflict.id}
    if outcome.blocked_by is not None:
        return {"blockedBy": outcome.blocked_by}
    if outcome.duplicate_of is not None:
        return {"duplicateOf": outcome.duplicate_of.value}
    return {}


def _offset_minutes(stamp: datetime) -> int | None:
    offset = stamp.utcoffset()
    return None if offset is None else int(offset.total_seconds() // 60)
