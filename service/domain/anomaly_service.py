"""The anomaly use cases beside the push that flags: list, read, and a manager's verdict."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

from service.domain.anomalies import Anomaly, AnomalyStatus, review, reviewed_event
from service.domain.anomalies.query import AnomalyCursor, AnomalyPage, AnomalyQuery
from service.domain.ports import Committed, EventSink, SyncRepository
from service.domain.push_plan import PushPlan
from service.domain.scope import rep_seen


class AnomalyService:
    def __init__(
        self,
        repository: SyncRepository,
        *,
        publish: EventSink = lambda committed: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repository = repository
        self._publish = publish
        self._clock = clock

    async def page(
        self, scope_rep: str | None, query: AnomalyQuery, after: AnomalyCursor | None, limit: int
    ) -> AnomalyPage:
        """Flags newest first; a rep's are its own only (asking for another rep is ``OutOfScope``)."""
        narrowed = dataclasses.replace(query, rep_id=rep_seen(scope_rep, query.rep_id))
        return await self._repository.anomaly_page(narrowed, after, limit)

    async def get(self, scope_rep: str | None, anomaly_id: str) -> Anomaly | None:
        """One flag, or None when there is none the caller may see."""
        anomaly = await self._repository.get_anomaly(anomaly_id)
        return anomaly if anomaly is not None and scope_rep in (None, anomaly.rep_id) else None

    async def get_many(self, anomaly_ids: list[str]) -> dict[str, Anomaly]:
        """Flags by id, in one read: what a live feed shows of its events (already narrowed to the caller)."""
        return await self._repository.get_anomalies(anomaly_ids)

    async def review(self, anomaly_id: str, verdict: AnomalyStatus, note: str | None, reviewer: str) -> Anomaly | None:
        """A manager marks a flag CONFIRMED or DISMISSED (with a note), recorded in the history; None: no such flag."""

        async def work(tx: object) -> tuple[Anomaly | None, Committed | None]:
            anomaly = await self._repository.get_anomaly(anomaly_id, tx)
            if anomaly is None:
                return None, None
            reviewed = review(anomaly, verdict, note, reviewer, self._clock())
            if reviewed is anomaly:
                return anomaly, None
            plan = PushPlan()
            plan.anomalies[reviewed.id] = reviewed
            plan.events.append(reviewed_event(reviewed))
            return reviewed, await self._repository.commit(plan, None, tx)

        result, committed = await self._repository.in_transaction(work)
        if committed is not None:
            self._publish(committed)
        return result
