"""Anomaly flags in GraphQL: the ``anomalies`` connection, ``reviewAnomaly`` and the ``anomalyEvents`` feed."""

from __future__ import annotations

from enum import Enum

import strawberry

from service.api.context import BadRequest, Forbidden, Info, NotFoundError
from service.api.identity import Device, User, device_named, user_named
from service.api.pages import PageInfo, decode_time_cursor, encode_time_cursor
from service.api.scalars import JSON, DateTime, optional_id, require_offset
from service.auth.roles import Role
from service.domain import anomalies as domain
from service.domain.anomalies import AnomalyCode, AnomalyStatus, NotReviewable, Severity
from service.domain.anomalies.query import AnomalyQuery
from service.domain.history import ANOMALY_CONFIRMED, ANOMALY_DISMISSED, ANOMALY_FLAGGED
from service.domain.record_types import RecordType
from service.domain.scope import OutOfScope

strawberry.enum(AnomalyCode, description="What kind of anomaly a flag is (docs/anomalies.md).")
strawberry.enum(Severity, name="AnomalySeverity", description="HIGH: an open flag puts its rep in NEEDS_ATTENTION.")
strawberry.enum(AnomalyStatus, description="OPEN until a manager CONFIRMS or DISMISSES it.")


@strawberry.type(
    description="Data valid on its own but suspicious in context, flagged with the change; never blocks it."
)
class Anomaly:
    id: strawberry.ID
    code: AnomalyCode
    severity: Severity
    status: AnomalyStatus
    reason: str = strawberry.field(description="One sentence: the data, the numbers and the line they crossed.")
    evidence: JSON = strawberry.field(description="The values behind the sentence, and the baseline or line used.")
    rep_id: strawberry.ID
    device_id: strawberry.ID
    record_type: RecordType | None
    record_id: strawberry.ID | None
    offline_id: strawberry.ID | None
    sync_id: strawberry.ID | None
    flagged_at: DateTime
    captured_at: DateTime | None
    reviewed_at: DateTime | None
    reviewed_by: str | None
    note: str | None = strawberry.field(description="The manager's note with the verdict.")

    @strawberry.field
    async def device(self, info: Info) -> Device | None:
        return await device_named(info, self.device_id)

    @strawberry.field
    async def rep(self, info: Info) -> User | None:
        return await user_named(info, self.rep_id)

    @classmethod
    def of(cls, anomaly: domain.Anomaly) -> Anomaly:
        return cls(
            id=strawberry.ID(anomaly.id),
            code=anomaly.code,
            severity=anomaly.severity,
            status=anomaly.status,
            reason=anomaly.reason,
            evidence=anomaly.evidence,
            rep_id=strawberry.ID(anomaly.rep_id),
            device_id=strawberry.ID(anomaly.device_id),
            record_type=anomaly.record_type,
            record_id=optional_id(anomaly.record_id),
            offline_id=optional_id(anomaly.offline_id),
            sync_id=optional_id(anomaly.sync_id),
            flagged_at=anomaly.flagged_at,
            captured_at=anomaly.captured_at,
            reviewed_at=anomaly.reviewed_at,
            reviewed_by=anomaly.reviewed_by,
            note=anomaly.note,
        )


@strawberry.input
class AnomalyFilter:
    rep_id: strawberry.ID | None = None
    device_id: strawberry.ID | None = None
    codes: list[AnomalyCode] | None = None
    status: list[AnomalyStatus] | None = None
    severity: list[Severity] | None = None
    since: DateTime | None = strawberry.field(default=None, description="Flagged at or after.")
    until: DateTime | None = strawberry.field(default=None, description="Flagged before.")


@strawberry.type
class AnomalyEdge:
    cursor: str
    node: Anomaly


@strawberry.type
class AnomalyConnection:
    edges: list[AnomalyEdge]
    page_info: PageInfo
    total_count: int


def _query(filter: AnomalyFilter) -> AnomalyQuery:
    try:
        since = require_offset(filter.since, "since") if filter.since else None
        until = require_offset(filter.until, "until") if filter.until else None
    except ValueError as error:
        raise BadRequest(str(error)) from None
    return AnomalyQuery(
        rep_id=str(filter.rep_id) if filter.rep_id else None,
        device_id=str(filter.device_id) if filter.device_id else None,
        codes=tuple(filter.codes or ()),
        statuses=tuple(filter.status or ()),
        severities=tuple(filter.severity or ()),
        since=since,
        until=until,
    )


async def anomalies(
    info: Info, filter: AnomalyFilter | None = None, first: int | None = 50, after: str | None = None
) -> AnomalyConnection:
    """Newest first; a rep sees its own flags only."""
    first = 50 if first is None else first
    principal = info.context.require(Role.ADMIN, Role.MANAGER, Role.REP, Role.INTEGRATOR)
    if not 1 <= first <= 500:
        raise BadRequest("first must be between 1 and 500")
    query = _query(filter or AnomalyFilter())
    cursor = decode_time_cursor(after) if after else None
    try:
        page = await info.context.services.anomalies.page(principal.scope_rep, query, cursor, first)
    except OutOfScope:
        raise Forbidden("a rep sees only its own anomalies") from None
    edges = [AnomalyEdge(cursor=encode_time_cursor(a.flagged_at, a.id), node=Anomaly.of(a)) for a in page.anomalies]
    return AnomalyConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_more, end_cursor=edges[-1].cursor if edges else None),
        total_count=page.total,
    )


async def review_anomaly(info: Info, id: strawberry.ID, status: AnomalyStatus, note: str | None = None) -> Anomaly:
    """A manager marks a flag CONFIRMED or DISMISSED; the verdict and note go into the history."""
    principal = info.context.require(Role.ADMIN, Role.MANAGER)
    if note is not None and len(note) > 2000:
        raise BadRequest("note must be at most 2000 characters")
    try:
        reviewed = await info.context.services.anomalies.review(str(id), status, note, f"user:{principal.user_id}")
    except NotReviewable as error:
        raise BadRequest(str(error)) from None
    if reviewed is None:
        raise NotFoundError(f"no anomaly {id}")
    return Anomaly.of(reviewed)


@strawberry.enum
class AnomalyEventType(Enum):
    FLAGGED = "FLAGGED"
    CONFIRMED = "CONFIRMED"
    DISMISSED = "DISMISSED"


EVENT_TYPES = {
    ANOMALY_FLAGGED: AnomalyEventType.FLAGGED,
    ANOMALY_CONFIRMED: AnomalyEventType.CONFIRMED,
    ANOMALY_DISMISSED: AnomalyEventType.DISMISSED,
}


@strawberry.type
class AnomalyEvent:
    type: AnomalyEventType
    anomaly: Anomaly
    at: DateTime
