"""Seed 001: the initial sync carries open visits and work orders plus those around today, not the
rep's whole history; deltas still carry every change."""

from datetime import UTC, datetime, timedelta

from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.services import Services
from tests.factories import work_order_fields
from tests.store.test_pull_cursors import pull_all

VISIT, OUTLET, WORK_ORDER = RecordType.VISIT, RecordType.OUTLET, RecordType.WORK_ORDER


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).isoformat()


async def test_the_initial_sync_carries_open_work_and_a_window_around_today(services: Services):
    write = services.sync.write_record
    await write(OUTLET, "o1", {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6}, None, user_id="hq")
    visits = {
        "planned-long-ago": {"status": "PLANNED", "plannedAt": day(-60)},  # still open: the rep owes it
        "done-last-month": {"status": "COMPLETED", "plannedAt": day(-30), "completedAt": day(-30)},
        "done-this-week": {"status": "COMPLETED", "plannedAt": day(-3), "completedAt": day(-3)},
        "cancelled-next-week": {"status": "CANCELLED", "plannedAt": day(10)},
        "cancelled-next-month": {"status": "CANCELLED", "plannedAt": day(30)},
    }
    for visit_id, fields in visits.items():
        written = await write(VISIT, visit_id, {"outletId": "o1", "repId": "rep1", **fields}, None, user_id="hq")
        assert written.status is ChangeStatus.APPLIED, written
    work_orders = {
        "wo-open": work_order_fields(),
        "wo-done-long-ago": work_order_fields(status="COMPLETED", completedAt=day(-20)),
        "wo-done-yesterday": work_order_fields(status="COMPLETED", completedAt=day(-1)),
    }
    for work_order_id, fields in work_orders.items():
        written = await write(WORK_ORDER, work_order_id, {**fields, "repId": "rep1"}, None, user_id="hq")
        assert written.status is ChangeStatus.APPLIED, written

    records, cursor = await pull_all(services, "rep1", None, limit=3)
    assert sorted(r.id for r in records if r.key[0] in (VISIT, WORK_ORDER)) == [
        "cancelled-next-week",
        "done-this-week",
        "planned-long-ago",
        "wo-done-yesterday",
        "wo-open",
    ]

    notes = {"outletId": "o1", "repId": "rep1", **visits["done-last-month"], "notes": "late photo"}
    await write(VISIT, "done-last-month", notes, 1, user_id="hq")
    delta, _ = await pull_all(services, "rep1", cursor)
    assert [r.id for r in delta if r.key[0] is VISIT] == ["done-last-month"]
