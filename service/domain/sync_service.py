"""The sync use cases: push, pull, resolve a conflict, write a record from the web."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from service.domain.anomalies import AnomalyThresholds, PushFacts, flag_push, looks_at
from service.domain.changes import Change, Operation
from service.domain.conflicts import Conflict, ConflictStatus, Resolution, device_change, web_conflict
from service.domain.decide import Actor, Decision, decide_change
from service.domain.document_cache import DocumentCache, WorkingDocuments
from service.domain.frozen import evolve
from service.domain.history import (
    CONFLICT_DISCARDED,
    CONFLICT_OVERWRITTEN,
    PUSH,
    PUSH_REFUSED,
    RECORD_WRITTEN,
    REFUSAL_ACKNOWLEDGED,
    REFUSAL_DISMISSED,
    STATUS_REPORTED,
    SyncEvent,
)
from service.domain.initial_sync import InitialWindow
from service.domain.outcomes import ChangeStatus, Outcome
from service.domain.ports import Committed, EventSink, PullPage, SyncInfo, SyncRepository
from service.domain.pull_cursor import InvalidCursor, decode_cursor, encode_cursor
from service.domain.push_plan import BlockingMode, PushContext, PushPlan, plan_push
from service.domain.record_types import RecordType
from service.domain.records import Record, RecordKey
from service.domain.refusals import Refusal, RefusalAction, RefusalKind, RefusalStatus
from service.domain.rules import RuleSettings
from service.domain.scope import UNBOUND, OutletAccess, RecordAccess, touched_keys

T = TypeVar("T")
Work = Callable[[object, WorkingDocuments], Awaitable[tuple["T", Committed | None]]]


@dataclass(frozen=True)
class SyncSettings:
    rules: RuleSettings = field(default_factory=RuleSettings)
    blocking: BlockingMode = BlockingMode.QUEUE
    chunk_size: int = 100  # changes decided and committed per transaction
    initial_window: InitialWindow = field(default_factory=InitialWindow)
    outlet_access: OutletAccess = OutletAccess.SCOPE  # which outlets reps may change and reference
    anomalies: AnomalyThresholds | None = field(default_factory=AnomalyThresholds)  # None: no flagging


@dataclass(frozen=True)
class PushResult:
    sync_id: str
    server_time: datetime
    outcomes: list[Outcome]


@dataclass(frozen=True)
class ResolveResult:
    conflict: Conflict
    record: Record | None
    refusal: Refusal | None = None  # an OVERWRITE the rules refuse (the conflict stays open)


@dataclass(frozen=True)
class WriteResult:
    status: ChangeStatus
    record: Record | None
    conflict: Conflict | None = None
    refusal: Refusal | None = None


class NotFound(LookupError):
    pass


class InvalidRequest(ValueError):
    pass


class SyncService:
    def __init__(
        self,
        repository: SyncRepository,
        settings: SyncSettings,
        *,
        documents: DocumentCache | None = None,
        publish: EventSink = lambda committed: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repository = repository
        self._settings = settings
        self.access = RecordAccess(repository, settings.outlet_access)  # who sees and changes what
        self.documents = documents or DocumentCache()
        self._publish = publish
        self._clock = clock
        self.committed_changes = 0  # changes decided and committed since start (chunk by chunk)

    async def _in_unit_of_work[T](self, work: Work[T]) -> T:
        """Run ``work`` in one transaction (again from the start on a write conflict); once it has
        committed, return its documents to the cache and publish its events."""

        async def attempt(tx: object) -> tuple[T, Committed | None, WorkingDocuments]:
            documents = WorkingDocuments(self.documents)
            result, committed = await work(tx, documents)
            return result, committed, documents

        result, committed, documents = await self._repository.in_transaction(attempt)
        if committed is not None:
            documents.commit(committed.records)
            self._publish(committed)
        return result

    # -- push ---------------------------------------------------------------

    async def push(
        self,
        changes: list[Change],
        *,
        device_id: str,
        rep_id: str,
        app_version: str | None = None,
        queue_depth: int | None = None,
        sent_at: datetime | None = None,
        revocations_seen: int | None = None,
    ) -> PushResult:
        """``revocations_seen``: the revocations counted when the caller's token was last checked, which
        the first chunk's commit confirms (RevokedSince, and nothing committed, when there are more): from
        there on the push goes on as one admitted at its start."""
        received_at = self._clock()
        sync = SyncInfo(
            str(uuid.uuid4()),
            device_id,
            rep_id,
            app_version,
            received_at,
            queue_depth,
            sent_at=sent_at,
            revocations_seen=revocations_seen,
        )
        actor = Actor(writer=device_id, rep_id=rep_id, device_id=device_id)
        outcomes: list[Outcome] = []
        size = self._settings.chunk_size
        starts = range(0, max(len(changes), 1), size)
        for start in starts:
            # One push is one sync session: its last chunk records the session, counting every chunk.
            so_far = Counter(outcome.status.value for outcome in outcomes) if start == starts[-1] else None
            outcomes += await self._push_chunk(changes[start : start + size], sync, actor, so_far)
            sync = dataclasses.replace(sync, revocations_seen=None)
        return PushResult(sync.sync_id, self._clock(), outcomes)

    async def _push_chunk(
        self, changes: list[Change], sync: SyncInfo, actor: Actor, session_counts: Counter[str] | None
    ) -> list[Outcome]:
        async def work(tx: object, documents: WorkingDocuments) -> tuple[tuple[PushPlan, Committed], Committed]:
            now = self._clock()
            snapshot = await self._repository.load_push_snapshot(sync, now, changes, tx)
            scope = await self.access.scope_for(actor.rep_id, touched_keys(changes), snapshot.records, tx)
            context = PushContext(
                sync_id=sync.sync_id,
                actor=actor,
                now=now,
                settings=self._settings.rules,
                blocking=self._settings.blocking,
                documents=documents,
                new_id=lambda: str(uuid.uuid4()),
                scope=scope,
            )
            plan = plan_push(changes, snapshot, context)
            await self._flag(plan, changes, snapshot.records, sync, context.now, tx)
            if session_counts is not None:
                counts = session_counts + Counter(outcome.status.value for outcome in plan.outcomes)
                plan.events.append(_session_event(PUSH, sync, context.now, counts))
            committed = await self._repository.commit(plan, sync, tx)
            return (plan, committed), committed

        plan, committed = await self._in_unit_of_work(work)
        self.committed_changes += len(changes)
        return [_with_stored_record(outcome, committed) for outcome in plan.outcomes]

    async def _flag(
        self,
        plan: PushPlan,
        changes: list[Change],
        stored: dict[RecordKey, Record],
        sync: SyncInfo,
        now: datetime,
        tx: object,
    ) -> None:
        """Flag what the push brought in, in its transaction: one read of baselines, never per change,
        and none when no detector looks at the push (every change refused, say, and no queue depth)."""
        thresholds = self._settings.anomalies
        facts = PushFacts(sync.sync_id, sync.device_id, sync.rep_id, now, sync.queue_depth, sync.sent_at)
        if thresholds is None or not looks_at(plan.outcomes, facts):
            return
        baselines = await self._repository.load_baselines(sync.rep_id, sync.device_id, tx)
        plan.flag(flag_push(changes, plan.outcomes, stored, baselines, facts, thresholds))

    def now(self) -> datetime:
        return self._clock()

    async def report_status(self, *, device_id: str, rep_id: str, queue_depth: int, app_version: str | None) -> Any:
        """A device reports its queue without pushing; returns the device as stored."""
        now = self._clock()
        sync = SyncInfo(str(uuid.uuid4()), device_id, rep_id, app_version, now, queue_depth, is_push=False)

        async def work(tx: object, documents: WorkingDocuments) -> tuple[Any, Committed]:
            plan = PushPlan()
            await self._flag(plan, [], {}, sync, now, tx)
            plan.events.append(_session_event(STATUS_REPORTED, sync, now, Counter()))
            committed = await self._repository.commit(plan, sync, tx)
            return committed.device, committed

        return await self._in_unit_of_work(work)

    # -- pull ---------------------------------------------------------------

    async def pull(
        self, rep_id: str, since: str | None, limit: int, *, revocations_seen: int | None = None
    ) -> tuple[PullPage, str]:
        """A page of the rep's scope after the cursor, and the cursor to continue from. ``revocations_seen``:
        as for ``push``, confirmed by the page's first read (RevokedSince before anything is read)."""
        watermark: int | None
        if since is None:
            after, watermark = 0, await self._repository.current_seq(revocations_seen)
        else:
            try:
                after, watermark = decode_cursor(since)
            except InvalidCursor as error:
                raise InvalidRequest(str(error)) from None
        window = self._settings.initial_window.around(self._clock())
        head = watermark if since is None else None  # just read: the page's ceiling too, not read again
        page = await self._repository.pull_page(rep_id, after, watermark, limit, window, revocations_seen, head)
        still_initial = watermark if watermark is not None and page.last_seq < watermark else None
        return page, encode_cursor(page.last_seq, still_initial)

    # -- conflicts ----------------------------------------------------------

    async def resolve_conflict(
        self, conflict_id: str, resolution: Resolution, *, resolver: str, may_resolve: Callable[[Conflict], bool]
    ) -> ResolveResult:
        async def work(tx: object, documents: WorkingDocuments) -> tuple[ResolveResult, Committed | None]:
            conflict = await self._repository.get_conflict(conflict_id, tx)
            if conflict is None or not may_resolve(conflict):
                raise NotFound(f"no conflict {conflict_id}")
            if conflict.status is not ConflictStatus.OPEN:
                records = await self._repository.load_records([(conflict.record_type, conflict.record_id)], tx)
                return ResolveResult(conflict, records.get((conflict.record_type, conflict.record_id))), None
            now = self._clock()
            plan = PushPlan()
            key = (conflict.record_type, conflict.record_id)
            if resolution is Resolution.DISCARD:
                records = await self._repository.load_records([key], tx)
                current = records.get(key)
                resolved = dataclasses.replace(
                    conflict,
                    status=ConflictStatus.DISCARDED,
                    resolved_at=now,
                    resolved_version=current.version if current else 0,
                )
                plan.conflicts.append(resolved)
                plan.events.append(_conflict_event(CONFLICT_DISCARDED, resolved, resolver, now, records.get(key)))
                return ResolveResult(resolved, records.get(key)), await self._repository.commit(plan, None, tx)
            change = device_change(conflict)
            records = await self._repository.load_records([key, *change.references], tx)
            current = records.get(key)
            change = dataclasses.replace(change, base_version=current.version if current else None)
            actor = Actor(writer=conflict.device_id, rep_id=conflict.rep_id, device_id=conflict.device_id)
            scope = await self.access.scope_for(conflict.rep_id, touched_keys([change]), records, tx)
            decision = decide_change(change, records, actor, self._settings.rules, documents, now, scope=scope)
            if decision.status is ChangeStatus.REFUSED:
                assert decision.verdict is not None
                refusal = _unsaved_refusal(decision, conflict.rep_id, now)
                return ResolveResult(conflict, current, refusal), None
            after = decision.record or current
            resolved = dataclasses.replace(
                conflict,
                status=ConflictStatus.OVERWRITTEN,
                resolved_at=now,
                resolved_version=after.version if after else 0,
            )
            plan.conflicts.append(resolved)
            if decision.written and decision.record is not None:
                plan.write(decision.record, current.version if current else None, decision.left_scope_of)
            plan.events.append(_conflict_event(CONFLICT_OVERWRITTEN, resolved, resolver, now, decision.record, current))
            committed = await self._repository.commit(plan, None, tx)
            return ResolveResult(resolved, committed.records.get(key, current)), committed

        return await self._in_unit_of_work(work)

    # -- web writes -----------------------------------------------------------

    async def write_record(
        self,
        record_type: RecordType,
        record_id: str,
        fields: dict[str, object] | None,
        base_version: int | None,
        *,
        user_id: str,
        delete: bool = False,
    ) -> WriteResult:
        """A manager's edit: SHARED fields merge as a server patch, OWNED under optimistic concurrency."""
        now = self._clock()
        change = Change(
            offline_id=f"web:{uuid.uuid4()}",
            record_type=record_type,
            record_id=record_id,
            operation=Operation.DELETE if delete else Operation.UPSERT,
            captured_at=now,
            base_version=base_version,
            fields=dict(fields) if fields is not None else None,
        )
        actor = Actor(writer=f"user:{user_id}")

        async def work(tx: object, documents: WorkingDocuments) -> tuple[WriteResult, Committed | None]:
            records = await self._repository.load_records([change.key, *change.references], tx)
            current = records.get(change.key)
            decision = decide_change(change, records, actor, self._settings.rules, documents, now, scope=UNBOUND)
            match decision.status:
                case ChangeStatus.REFUSED:
                    refusal = _unsaved_refusal(decision, None, now)
                    return WriteResult(ChangeStatus.REFUSED, current, refusal=refusal), None
                case ChangeStatus.CONFLICT:
                    conflict = web_conflict(change, current, user_id, now)
                    return WriteResult(ChangeStatus.CONFLICT, current, conflict=conflict), None
                case ChangeStatus.UNCHANGED if not decision.written:
                    return WriteResult(ChangeStatus.UNCHANGED, current), None
            assert decision.record is not None
            plan = PushPlan(archives=documents.archives_to_write())
            leaving = await self.access.leaving(decision.record, decision.left_scope_of, tx)
            plan.write(decision.record, current.version if current else None, leaving)
            plan.scope_exits += await self.access.outlets_left_behind(current, decision.record, tx)
            plan.events.append(
                SyncEvent(
                    action=RECORD_WRITTEN,
                    at=now,
                    actor_id=actor.writer,
                    record_type=record_type,
                    record_id=record_id,
                    version_before=current.version if current else None,
                    version_after=decision.record.version,
                    utc_offset_minutes=0,
                    detail={"status": decision.status.value},
                )
            )
            committed = await self._repository.commit(plan, None, tx)
            return WriteResult(decision.status, committed.records[change.key]), committed

        return await self._in_unit_of_work(work)

    # -- refusals -------------------------------------------------------------

    async def refuse_push(
        self, *, code: str, reason: str, device_id: str | None, rep_id: str | None, detail: dict[str, object]
    ) -> Refusal:
        """Record a whole push turned away (bad token, oversized, malformed), with its reason."""
        now = self._clock()
        refusal = Refusal(
            id=str(uuid.uuid4()),
            kind=RefusalKind.PUSH,
            code=code,
            reason=reason,
            action=RefusalAction.ACKNOWLEDGE,
            status=RefusalStatus.OPEN,
            created_at=now,
            device_id=device_id,
            rep_id=rep_id,
        )
        plan = PushPlan()
        plan.refusals[refusal.id] = refusal
        plan.events.append(
            SyncEvent(
                action=PUSH_REFUSED,
                at=now,
                device_id=device_id,
                rep_id=rep_id,
                detail={"refusalId": refusal.id, "code": code, **detail},
            )
        )

        async def work(tx: object, documents: WorkingDocuments) -> tuple[Refusal, Committed]:
            return refusal, await self._repository.commit(plan, None, tx)

        return await self._in_unit_of_work(work)

    async def close_refusal(
        self,
        refusal_id: str,
        *,
        acknowledge: bool,
        actor_id: str,
        may_close: Callable[[Refusal], bool],
        note: str | None = None,
    ) -> Refusal:
        """A rep acknowledges an ACKNOWLEDGE refusal; a manager dismisses any open one."""

        async def work(tx: object, documents: WorkingDocuments) -> tuple[Refusal, Committed | None]:
            refusal = await self._repository.get_refusal(refusal_id, tx)
            if refusal is None or not may_close(refusal):
                raise NotFound(f"no refusal {refusal_id}")
            if refusal.status is not RefusalStatus.OPEN:
                return refusal, None
            if acknowledge and refusal.action is not RefusalAction.ACKNOWLEDGE:
                raise InvalidRequest(
                    f"refusal {refusal_id} asks to fix data ({refusal.code}); fix the data, or a manager dismisses it"
                )
            now = self._clock()
            closed = dataclasses.replace(
                refusal,
                status=RefusalStatus.ACKNOWLEDGED if acknowledge else RefusalStatus.DISMISSED,
                resolved_at=now,
                note=note,
            )
            plan = PushPlan()
            plan.refusals[closed.id] = closed
            plan.events.append(
                SyncEvent(
                    action=REFUSAL_ACKNOWLEDGED if acknowledge else REFUSAL_DISMISSED,
                    at=now,
                    device_id=refusal.device_id,
                    rep_id=refusal.rep_id,
                    actor_id=actor_id,
                    offline_id=refusal.offline_id,
                    record_type=refusal.record_type,
                    record_id=refusal.record_id,
                    detail={"refusalId": refusal.id, "code": refusal.code, **({"note": note} if note else {})},
                )
            )
            return closed, await self._repository.commit(plan, None, tx)

        return await self._in_unit_of_work(work)


def _session_event(action: str, sync: SyncInfo, now: datetime, counts: Counter[str]) -> SyncEvent:
    return SyncEvent(
        action=action,
        at=now,
        sync_id=sync.sync_id,
        device_id=sync.device_id,
        rep_id=sync.rep_id,
        actor_id=sync.device_id,
        detail={"counts": dict(counts), "queueDepth": sync.queue_depth, "appVersion": sync.app_version},
    )


def _with_stored_record(outcome: Outcome, committed: Committed) -> Outcome:
    """Outcomes carry the records as stored (with their sequence numbers)."""
    if outcome.record is not None and outcome.record.key in committed.records:
        stored = committed.records[outcome.record.key]
        if stored.version == outcome.record.version:
            return evolve(outcome, record=stored)
    return outcome


def _conflict_event(
    action: str, conflict: Conflict, resolver: str, now: datetime, after: Record | None, before: Record | None = None
) -> SyncEvent:
    return SyncEvent(
        action=action,
        at=now,
        device_id=conflict.device_id,
        rep_id=conflict.rep_id,
        actor_id=resolver,
        offline_id=conflict.offline_id,
        record_type=conflict.record_type,
        record_id=conflict.record_id,
        version_before=before.version if before else after.version if after else None,
        version_after=after.version if after else None,
        detail={"conflictId": conflict.id},
    )


def _unsaved_refusal(decision: Decision, rep_id: str | None, now: datetime) -> Refusal:
    verdict = decision.verdict
    assert verdict is not None
    return Refusal(
        id="",
        kind=RefusalKind.RECORD,
        code=verdict.code,
        reason=verdict.reason,
        action=verdict.action,
        status=RefusalStatus.OPEN,
        created_at=now,
        field=verdict.field,
        related=verdict.related,
        rep_id=rep_id,
    )
