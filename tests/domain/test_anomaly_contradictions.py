"""CONTRADICTION: changes that contradict what the server already knew."""

from service.domain.anomalies import AnomalyCode, Severity
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from tests.domain.flagging import Phone, at
from tests.factories import change, order_fields, owned, work_order_fields

VISIT, ORDER, WORK_ORDER = RecordType.VISIT, RecordType.ORDER, RecordType.WORK_ORDER
DONE = {"outletId": "o1", "status": "COMPLETED", "completedAt": "2026-11-20T10:00:00+08:00"}


def kinds(flags):
    return [(f.code, f.severity, f.evidence.get("kind")) for f in flags]


def test_an_order_on_a_cancelled_visit():
    visit = owned(VISIT, "v1", {"outletId": "o1", "status": "CANCELLED"}, version=3)
    flags = Phone().push([change(ORDER, "or1", order_fields("o1", visitId="v1"))], stored={visit.key: visit})
    assert kinds(flags) == [(AnomalyCode.CONTRADICTION, Severity.HIGH, "ORDER_ON_CANCELLED_VISIT")]
    assert flags[0].reason.startswith("Order or1 was placed on visit v1, which was cancelled (version 3")
    planned = owned(VISIT, "v2", {"outletId": "o1", "status": "PLANNED"})
    assert Phone().push([change(ORDER, "or2", order_fields("o1", visitId="v2"))], stored={planned.key: planned}) == []


def test_an_order_on_a_visit_assigned_to_another_rep():
    visit = owned(VISIT, "v1", {"outletId": "o1", "status": "COMPLETED"}, owner="rep2")
    flags = Phone().push([change(ORDER, "or1", order_fields("o1", visitId="v1"))], stored={visit.key: visit})
    assert kinds(flags) == [(AnomalyCode.CONTRADICTION, Severity.HIGH, "NOT_ASSIGNEE")]
    assert "placed by rep rep1 on visit v1, which is assigned to rep rep2" in flags[0].reason


def test_a_visit_completed_twice_or_checked_in_after_completion():
    done = owned(VISIT, "v1", DONE, version=2)
    again = change(VISIT, "v1", {**DONE, "completedAt": "2026-11-20T15:00:00+08:00"}, base_version=2)
    flags = Phone().push([again], stored={done.key: done})
    assert kinds(flags) == [(AnomalyCode.CONTRADICTION, Severity.HIGH, "COMPLETED_TWICE")]
    back = change(VISIT, "v1", {**DONE, "status": "CHECKED_IN"}, base_version=2)
    assert kinds(Phone().push([back], stored={done.key: done}))[0][2] == "CHECKED_IN_AFTER_COMPLETION"
    same = change(VISIT, "v1", {**DONE, "notes": "Paid in cash"}, base_version=2)
    assert Phone().push([same], stored={done.key: done}) == []  # a note on a completed visit is no contradiction


def test_hours_logged_after_completion():
    fields = work_order_fields(status="COMPLETED", completedAt="2026-11-20T10:00:00+08:00")
    hours = [
        {"hours": 2, "loggedAt": "2026-11-20T09:00:00+08:00"},
        {"hours": 1.5, "loggedAt": "2026-11-20T10:01:00+08:00"},
    ]
    flags = Phone().push([change(WORK_ORDER, "w1", {**fields, "resourceHours": hours})])
    assert kinds(flags) == [(AnomalyCode.CONTRADICTION, Severity.HIGH, "HOURS_AFTER_COMPLETION")]
    assert flags[0].reason.startswith("Work order w1 has 1.5 hours logged after it was completed (1 entries")
    on_time = change(WORK_ORDER, "w2", {**fields, "resourceHours": hours[:1]})
    assert Phone().push([on_time]) == []


def test_refused_blocked_and_conflicting_changes_are_not_flagged():
    visit = owned(VISIT, "v1", {"outletId": "o1", "status": "CANCELLED"})
    orders = [change(ORDER, f"or{n}", order_fields("o1", visitId="v1"), captured_at=at(n)) for n in range(3)]
    statuses = [ChangeStatus.REFUSED, ChangeStatus.BLOCKED, ChangeStatus.CONFLICT]
    assert Phone().push(orders, stored={visit.key: visit}, statuses=statuses) == []
