"""Single-owner records (visits, orders, work orders): apply, conflict, lock."""

from service.domain.changes import Operation
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from tests.domain.helpers import plan, statuses
from tests.factories import change, order_fields, outlet, owned, product, work_order_fields

VISIT, ORDER, WORK_ORDER = RecordType.VISIT, RecordType.ORDER, RecordType.WORK_ORDER


def test_a_new_visit_is_applied_as_version_1_owned_by_the_devices_rep():
    result = plan([change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], [outlet()])
    outcome = result.outcomes[0]
    assert outcome.status is ChangeStatus.APPLIED
    assert outcome.record is not None
    assert (outcome.record.version, outcome.record.owner) == (1, "rep1")
    assert outcome.record.fields["repId"] == "rep1"
    assert list(result.writes) == [(VISIT, "v1")]


def test_an_edit_on_the_version_the_device_saw_bumps_the_version():
    current = owned(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, updated_by="user:manager")
    result = plan(
        [change(VISIT, "v1", {"outletId": "o1", "status": "CHECKED_IN"}, base_version=1)], [outlet(), current]
    )
    assert statuses(result) == ["APPLIED"]
    assert result.outcomes[0].record.version == 2  # type: ignore[union-attr]
    assert result.writes[(VISIT, "v1")].expected_version == 1


def test_sending_the_same_fields_again_is_unchanged_and_writes_nothing():
    current = owned(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})
    result = plan([change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, base_version=1)], [outlet(), current])
    assert statuses(result) == ["UNCHANGED"]
    assert result.writes == {}


def test_an_edit_on_an_old_version_changed_by_someone_else_is_a_conflict_with_both_versions():
    # Seed 002: user A edits status offline while user B changes the description.
    server = owned(WORK_ORDER, "w1", work_order_fields(description="B's text"), version=2, updated_by="user:b")
    mine = change(
        WORK_ORDER, "w1", work_order_fields(status="IN_PROGRESS", description="Fix the chiller"), base_version=1
    )
    result = plan([mine], [outlet(), server])
    outcome = result.outcomes[0]
    assert outcome.status is ChangeStatus.CONFLICT
    assert outcome.conflict is not None
    assert outcome.conflict.server_version == 2
    assert outcome.conflict.changed_fields == ["description", "status"]
    assert outcome.conflict.server_fields["description"] == "B's text"  # type: ignore[index]
    assert result.writes == {} and len(result.conflicts) == 1


def test_a_create_for_an_id_that_exists_is_a_conflict_unless_both_sides_agree():
    server = owned(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, updated_by="user:x")
    result = plan([change(VISIT, "v1", {"outletId": "o1", "status": "CANCELLED"})], [outlet(), server])
    assert statuses(result) == ["CONFLICT"]
    result = plan([change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], [outlet(), server])
    assert statuses(result) == ["UNCHANGED"]


def test_queued_edits_from_the_same_device_on_its_own_versions_do_not_conflict():
    first = change(VISIT, "v1", {"outletId": "o1", "status": "CHECKED_IN"}, base_version=1)
    second = change(VISIT, "v1", {"outletId": "o1", "status": "COMPLETED"}, base_version=1)
    current = owned(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, updated_by="user:manager")
    result = plan([first, second], [outlet(), current])
    assert statuses(result) == ["APPLIED", "APPLIED"]
    assert result.writes[(VISIT, "v1")].record.version == 3
    assert result.writes[(VISIT, "v1")].expected_version == 1


def test_later_changes_to_a_record_in_conflict_are_blocked_behind_it():
    server = owned(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, version=2, updated_by="user:x")
    first = change(VISIT, "v1", {"outletId": "o1", "status": "CHECKED_IN"}, base_version=1)
    second = change(VISIT, "v1", {"outletId": "o1", "status": "COMPLETED"}, base_version=1)
    other = change(VISIT, "v2", {"outletId": "o1", "status": "PLANNED"})
    result = plan([first, second, other], [outlet(), server])
    assert statuses(result) == ["CONFLICT", "BLOCKED", "APPLIED"]
    assert result.outcomes[1].blocked_by == first.offline_id


def test_adding_hours_to_a_work_order_someone_completed_is_refused_as_locked_whatever_the_base_version():
    # Seed 002, "Errors with Syncing".
    completed = owned(WORK_ORDER, "w1", work_order_fields(status="COMPLETED"), version=3, updated_by="user:b")
    hours = work_order_fields(
        status="IN_PROGRESS", resourceHours=[{"hours": 2, "loggedAt": "2026-11-20T10:00:00+08:00"}]
    )
    for base in (1, 3):
        result = plan([change(WORK_ORDER, "w1", hours, base_version=base)], [outlet(), completed])
        outcome = result.outcomes[0]
        assert outcome.status is ChangeStatus.REFUSED
        assert outcome.refusal is not None
        assert (outcome.refusal.code, outcome.refusal.action.value) == ("RECORD_LOCKED", "ACKNOWLEDGE")


def test_a_device_cannot_write_another_reps_record():
    theirs = owned(ORDER, "or1", order_fields(), owner="rep2")
    result = plan([change(ORDER, "or1", order_fields(), base_version=1)], [outlet(), product(), theirs])
    assert result.outcomes[0].refusal.code == "NOT_OWNER"  # type: ignore[union-attr]
    result = plan([change(ORDER, "or2", order_fields(repId="rep2"))], [outlet(), product()])
    assert result.outcomes[0].refusal.code == "NOT_OWNER"  # type: ignore[union-attr]


def test_delete_writes_a_tombstone_and_a_second_delete_is_unchanged():
    current = owned(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})
    result = plan([change(VISIT, "v1", operation=Operation.DELETE, base_version=1)], [outlet(), current])
    assert statuses(result) == ["APPLIED"]
    tombstone = result.writes[(VISIT, "v1")].record
    assert tombstone.deleted and tombstone.version == 2
    result = plan([change(VISIT, "v1", operation=Operation.DELETE, base_version=2)], [outlet(), tombstone])
    assert statuses(result) == ["UNCHANGED"]


def test_products_are_read_only_for_devices():
    result = plan([change(RecordType.PRODUCT, "p1", {"sku": "X", "name": "X", "unitPrice": 1})])
    assert result.outcomes[0].refusal.code == "READ_ONLY"  # type: ignore[union-attr]
