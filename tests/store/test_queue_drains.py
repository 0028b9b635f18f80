"""Against the real store: a resolved conflict drains the queue behind it; one push is one session."""

from service.domain.conflicts import Resolution
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.services import Services
from service.store import history
from tests.factories import change, work_order_fields
from tests.store.test_push_storage import seed

VISIT, WORK_ORDER = RecordType.VISIT, RecordType.WORK_ORDER


async def conflicted_queue(services: Services):
    """A technician checks in and completes a work order offline while the office edits it."""
    await seed(services)
    await services.sync.write_record(WORK_ORDER, "w1", {**work_order_fields(), "repId": "rep1"}, None, user_id="hq")
    office = work_order_fields(description="Chiller and freezer")
    await services.sync.write_record(WORK_ORDER, "w1", {**office, "repId": "rep1"}, 1, user_id="hq")
    check_in = change(WORK_ORDER, "w1", work_order_fields(status="IN_PROGRESS"), base_version=1)
    complete = change(
        WORK_ORDER, "w1", work_order_fields(status="COMPLETED", completedAt="2026-11-20T05:00:00Z"), base_version=1
    )
    first = await services.sync.push([check_in, complete], device_id="dev1", rep_id="rep1")
    assert [o.status for o in first.outcomes] == [ChangeStatus.CONFLICT, ChangeStatus.BLOCKED]
    conflict = first.outcomes[0].conflict
    assert conflict is not None
    return conflict, check_in, complete


async def test_after_overwrite_the_queued_completion_is_decided_on_the_resolved_version(services: Services):
    conflict, check_in, complete = await conflicted_queue(services)
    resolved = await services.sync.resolve_conflict(
        conflict.id, Resolution.OVERWRITE, resolver="user:rep1", may_resolve=lambda c: True
    )
    assert resolved.record is not None and resolved.record.version == 3
    again = await services.sync.push([check_in, complete], device_id="dev1", rep_id="rep1")
    assert [o.status for o in again.outcomes] == [ChangeStatus.DUPLICATE, ChangeStatus.APPLIED]
    assert again.outcomes[1].record is not None
    assert (again.outcomes[1].record.version, again.outcomes[1].record.fields["status"]) == (4, "COMPLETED")


async def test_after_discard_the_queued_completion_goes_on_from_the_server_version(services: Services):
    conflict, _, complete = await conflicted_queue(services)
    await services.sync.resolve_conflict(
        conflict.id, Resolution.DISCARD, resolver="user:rep1", may_resolve=lambda c: True
    )
    again = await services.sync.push([complete], device_id="dev1", rep_id="rep1")
    assert [o.status for o in again.outcomes] == [ChangeStatus.APPLIED]


async def test_a_push_of_230_changes_is_one_sync_session(services: Services):
    await seed(services)
    queue = [change(VISIT, f"v{i}", {"outletId": "o1", "status": "PLANNED"}) for i in range(230)]
    result = await services.sync.push(queue, device_id="dev1", rep_id="rep1", queue_depth=0)
    assert {o.status for o in result.outcomes} == {ChangeStatus.APPLIED}
    sessions = await services.store.db[history.COLLECTION].find({"action": "PUSH"}).to_list()
    assert len(sessions) == 1 and sessions[0]["syncId"] == result.sync_id
    assert sessions[0]["detail"]["counts"] == {"APPLIED": 230}
    assert "syncs" not in await services.store.db.list_collection_names()  # the PUSH event is the session
