"""Refusals block the queue (or the record) behind them; fixing the data clears them."""

import dataclasses

from service.domain.outcomes import ChangeStatus
from service.domain.push_plan import BlockingMode
from service.domain.receipts import Receipt
from service.domain.record_types import RecordType
from service.domain.refusals import RefusalStatus
from tests.domain.helpers import plan, statuses
from tests.factories import T0, change, order_fields, outlet, product

VISIT, ORDER, OUTLET = RecordType.VISIT, RecordType.ORDER, RecordType.OUTLET


def _queue():
    return [
        change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, offline_id="a", captured_at=T0),
        change(VISIT, "v2", {"outletId": "gone", "status": "PLANNED"}, offline_id="b", captured_at=T0),
        change(VISIT, "v3", {"outletId": "o1", "status": "PLANNED"}, offline_id="c", captured_at=T0),
        change(ORDER, "or1", order_fields("o1", visitId="v2"), offline_id="d", captured_at=T0),
    ]


def test_a_fix_data_refusal_blocks_everything_queued_behind_it_by_default():
    result = plan(_queue(), [outlet(), product()])
    assert statuses(result) == ["APPLIED", "REFUSED", "BLOCKED", "BLOCKED"]
    assert [o.blocked_by for o in result.outcomes[2:]] == ["b", "b"]
    refusal = result.outcomes[1].refusal
    assert refusal is not None and refusal.code == "OUTLET_NOT_FOUND"
    assert refusal.related == (OUTLET, "gone")


def test_in_record_mode_it_blocks_only_the_record_and_records_that_reference_it():
    result = plan(_queue(), [outlet(), product()], blocking=BlockingMode.RECORD)
    assert statuses(result) == ["APPLIED", "REFUSED", "APPLIED", "BLOCKED"]
    assert result.outcomes[3].blocked_by == "b"


def test_after_the_data_is_fixed_the_resent_change_goes_through_and_the_queue_drains():
    first = plan(_queue(), [outlet(), product()])
    refusal = first.outcomes[1].refusal
    receipts = list(first.receipts.values())
    fixed_outlet = outlet("gone", name="Kedai Baru")
    second = plan(_queue(), [outlet(), product(), fixed_outlet], receipts=receipts, refusals=[refusal])
    assert statuses(second) == ["DUPLICATE", "APPLIED", "APPLIED", "APPLIED"]
    resolved = second.refusals[refusal.id]  # type: ignore[union-attr]
    assert resolved.status is RefusalStatus.RESOLVED and resolved.attempts == 2
    assert "REFUSAL_RESOLVED" in [event.action for event in second.events]


def test_a_device_that_skips_its_refused_change_gets_blocked_answers():
    first = plan(_queue(), [outlet(), product()])
    refusal = first.outcomes[1].refusal
    later = [change(VISIT, "v9", {"outletId": "o1", "status": "PLANNED"}, offline_id="z")]
    second = plan(later, [outlet()], refusals=[refusal])
    assert statuses(second) == ["BLOCKED"]
    assert second.outcomes[0].blocked_by == "b"


def test_a_refused_change_sent_again_unfixed_is_refused_again_with_more_attempts():
    first = plan(_queue(), [outlet(), product()])
    refusal = first.outcomes[1].refusal
    second = plan(_queue()[1:], [outlet(), product()], refusals=[refusal])
    assert statuses(second) == ["REFUSED", "BLOCKED", "BLOCKED"]
    assert second.outcomes[0].refusal.attempts == 2  # type: ignore[union-attr]
    assert second.outcomes[0].refusal.id == refusal.id  # type: ignore[union-attr]


def test_acknowledge_refusals_block_nothing():
    bad_quantity = change(ORDER, "or1", order_fields("o1", ("p1", 0)), offline_id="q")
    after = change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, offline_id="r")
    result = plan([bad_quantity, after], [outlet(), product()])
    assert statuses(result) == ["REFUSED", "APPLIED"]
    assert result.outcomes[0].refusal.action.value == "ACKNOWLEDGE"  # type: ignore[union-attr]


def test_a_retry_of_a_decided_change_is_a_duplicate_and_writes_nothing_new():
    first = plan(_queue()[:1], [outlet()])
    record = first.outcomes[0].record
    second = plan(_queue()[:1], [outlet(), record], receipts=first.receipts.values())  # type: ignore[list-item]
    assert statuses(second) == ["DUPLICATE"]
    assert second.outcomes[0].duplicate_of is ChangeStatus.APPLIED
    assert second.writes == {}
    assert second.receipts["a"].attempts == 2


def test_the_same_offline_id_twice_in_one_push_is_decided_once():
    visit = change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, offline_id="same")
    result = plan([visit, visit], [outlet()])
    assert statuses(result) == ["APPLIED", "DUPLICATE"]


def test_an_offline_id_reused_for_a_different_change_is_refused_not_silently_dropped():
    visit = change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, offline_id="same")
    other = dataclasses.replace(visit, fields={"outletId": "o1", "status": "CANCELLED"})
    result = plan([visit, other], [outlet()])
    assert statuses(result) == ["APPLIED", "REFUSED"]
    refusal = result.outcomes[1].refusal
    assert refusal is not None and (refusal.code, refusal.action.value) == ("OFFLINE_ID_REUSED", "ACKNOWLEDGE")
    assert result.writes[(VISIT, "v1")].record.fields["status"] == "PLANNED"


def test_a_duplicate_of_an_open_conflict_returns_the_same_conflict():
    first = plan(
        [change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, offline_id="x", base_version=4)], [outlet()]
    )
    conflict = first.conflicts[0]
    receipt = Receipt("dev1", "x", ChangeStatus.CONFLICT, 1, T0, VISIT, "v1", None, conflict.id)
    again = plan(
        [change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, offline_id="x", base_version=4)],
        [outlet()],
        receipts=[receipt],
        conflicts=[conflict],
    )
    assert statuses(again) == ["DUPLICATE"]
    assert again.outcomes[0].conflict == conflict
