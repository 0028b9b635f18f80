"""Running the pure push planner without a database."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime

from service.domain.changes import Change
from service.domain.conflicts import Conflict
from service.domain.decide import Actor
from service.domain.document_cache import DocumentCache, WorkingDocuments
from service.domain.push_plan import BlockingMode, PushContext, PushPlan, PushSnapshot, plan_push
from service.domain.receipts import Receipt
from service.domain.records import Record
from service.domain.refusals import Refusal
from service.domain.rules import RuleSettings
from service.domain.scope import Scope
from tests.factories import T0

DEVICE = Actor(writer="dev1", rep_id="rep1", device_id="dev1")
_ids = itertools.count(1)


def plan(
    changes: list[Change],
    records: Iterable[Record] = (),
    *,
    receipts: Iterable[Receipt] = (),
    refusals: Iterable[Refusal] = (),
    conflicts: Iterable[Conflict] = (),
    blocking: BlockingMode = BlockingMode.QUEUE,
    actor: Actor = DEVICE,
    cache: DocumentCache | None = None,
    now: datetime = T0,
    scope: Scope | None = None,
) -> PushPlan:
    snapshot = PushSnapshot(
        records={r.key: r for r in records},
        receipts={r.offline_id: r for r in receipts},
        refusals={r.offline_id or "": r for r in refusals},
        conflicts={c.id: c for c in conflicts},
    )
    context = PushContext(
        sync_id="sync-1",
        actor=actor,
        now=now,
        settings=RuleSettings(),
        blocking=blocking,
        documents=WorkingDocuments(cache or DocumentCache()),
        new_id=lambda: f"conflict-{next(_ids)}",
        scope=scope or Scope(actor.rep_id),
    )
    return plan_push(changes, snapshot, context)


def statuses(result: PushPlan) -> list[str]:
    return [outcome.status.value for outcome in result.outcomes]
