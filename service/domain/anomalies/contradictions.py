"""CONTRADICTION: a change that contradicts what the server already knew of the records it touches."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from service.domain.anomalies.flags import AnomalyCode, Finding, Severity
from service.domain.anomalies.wording import subject, when
from service.domain.changes import Change, Operation
from service.domain.record_types import RecordType, check_timestamp
from service.domain.records import Record, RecordKey


def check_contradiction(
    change: Change, before: Record | None, records: Mapping[RecordKey, Record], rep_id: str
) -> Finding | None:
    """``before``: the record as it was before this change; ``records``: the others it points at."""
    if change.operation is Operation.DELETE or change.fields is None:
        return None
    match change.record_type:
        case RecordType.VISIT:
            return _visit_after_completion(change, before)
        case RecordType.ORDER:
            return _order_on_visit(change, before, records, rep_id)
        case RecordType.WORK_ORDER:
            return _hours_after_completion(change, before)
    return None


def _finding(kind: str, reason: str, evidence: dict[str, Any]) -> Finding:
    return Finding(AnomalyCode.CONTRADICTION, Severity.HIGH, reason, {"kind": kind, **evidence})


def _visit_after_completion(change: Change, before: Record | None) -> Finding | None:
    fields = change.fields or {}
    if before is None or before.deleted or before.fields.get("status") != "COMPLETED":
        return None
    completed_at = before.fields.get("completedAt")
    status = fields.get("status")
    if status == "CHECKED_IN":
        return _finding(
            "CHECKED_IN_AFTER_COMPLETION",
            f"{subject(change)} was checked in after it had been completed (completed at {completed_at}, "
            f"version {before.version}): a visit is not checked in again once it is done.",
            {"completedAt": completed_at, "checkInAt": fields.get("checkInAt"), "versionBefore": before.version},
        )
    if status == "COMPLETED" and fields.get("completedAt") not in (None, completed_at):
        return _finding(
            "COMPLETED_TWICE",
            f"{subject(change)} was completed a second time, at {fields.get('completedAt')}, after it had been "
            f"completed at {completed_at} (version {before.version}).",
            {
                "completedAt": completed_at,
                "completedAgainAt": fields.get("completedAt"),
                "versionBefore": before.version,
            },
        )
    return None


def _order_on_visit(
    change: Change, before: Record | None, records: Mapping[RecordKey, Record], rep_id: str
) -> Finding | None:
    visit_id = (change.fields or {}).get("visitId")
    if not isinstance(visit_id, str) or (before is not None and before.fields.get("visitId") == visit_id):
        return None  # no visit, or the visit the order already had
    visit = records.get((RecordType.VISIT, visit_id))
    if visit is None or visit.deleted:
        return None
    if visit.fields.get("status") == "CANCELLED":
        return _finding(
            "ORDER_ON_CANCELLED_VISIT",
            f"{subject(change)} was placed on visit {visit_id}, which was cancelled (version {visit.version}, "
            f"{when(visit.updated_at)}): an order needs a visit that took place.",
            {"visitId": visit_id, "visitStatus": "CANCELLED", "visitVersion": visit.version},
        )
    if visit.owner not in (None, rep_id):
        return _finding(
            "NOT_ASSIGNEE",
            f"{subject(change)} was placed by rep {rep_id} on visit {visit_id}, which is assigned to rep "
            f"{visit.owner}: work recorded by someone who is not the visit's assignee.",
            {"visitId": visit_id, "assignee": visit.owner, "rep": rep_id},
        )
    return None


def _hours_after_completion(change: Change, before: Record | None) -> Finding | None:
    fields = change.fields or {}
    completed = fields.get("completedAt") or (before.fields.get("completedAt") if before is not None else None)
    if fields.get("status") != "COMPLETED" or not completed:
        return None
    completed_at = check_timestamp("completedAt", completed)
    known = {_entry_key(e) for e in (before.fields.get("resourceHours") or [])} if before is not None else set()
    late = [
        entry
        for entry in fields.get("resourceHours") or []
        if _entry_key(entry) not in known and check_timestamp("loggedAt", entry["loggedAt"]) > completed_at
    ]
    if not late:
        return None
    hours = sum(float(entry["hours"]) for entry in late)
    last: datetime = max(check_timestamp("loggedAt", entry["loggedAt"]) for entry in late)
    return _finding(
        "HOURS_AFTER_COMPLETION",
        f"{subject(change)} has {hours:g} hours logged after it was completed ({len(late)} entries, the last "
        f"at {when(last)}; completed {when(completed_at)}): hours on finished work would be billed twice.",
        {"completedAt": completed, "lateEntries": late, "hours": hours},
    )


def _entry_key(entry: Any) -> tuple[Any, Any]:
    return (entry.get("hours"), entry.get("loggedAt")) if isinstance(entry, dict) else (None, None)
