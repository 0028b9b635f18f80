"""Queues that never get stuck: dismissal is terminal, retries are compared by content."""

import dataclasses
from datetime import timedelta, timezone

from pycrdt import Doc, Map

from service.domain.record_types import RecordType
from service.domain.refusals import RefusalStatus
from tests.domain.helpers import plan, statuses
from tests.domain.test_blocking import _queue
from tests.factories import T0, change, order_fields, outlet, product

VISIT, ORDER, OUTLET = RecordType.VISIT, RecordType.ORDER, RecordType.OUTLET


def test_a_dismissed_refusal_stays_dismissed_and_the_queue_behind_it_drains_in_the_same_push():
    first = plan(_queue(), [outlet(), product()])
    refusal = first.outcomes[1].refusal
    assert refusal is not None
    dismissed = dataclasses.replace(refusal, status=RefusalStatus.DISMISSED, note="outlet closed for good")
    second = plan(_queue()[1:], [outlet(), product()], receipts=first.receipts.values(), refusals=[dismissed])
    assert statuses(second) == ["REFUSED", "APPLIED", "APPLIED"]
    answer = second.outcomes[0].refusal
    assert answer is not None and (answer.status, answer.note) == (RefusalStatus.DISMISSED, "outlet closed for good")
    assert dismissed.id not in second.refusals  # closed for good: not reopened, not rewritten


def test_a_device_that_already_dropped_the_dismissed_change_is_not_blocked_by_it():
    first = plan(_queue(), [outlet(), product()])
    dismissed = dataclasses.replace(first.outcomes[1].refusal, status=RefusalStatus.DISMISSED)  # type: ignore[arg-type]
    later = [change(VISIT, "v9", {"outletId": "o1", "status": "PLANNED"}, offline_id="z")]
    assert statuses(plan(later, [outlet()], refusals=[dismissed])) == ["APPLIED"]


def test_a_retry_spelled_differently_is_the_same_change():
    visit = change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, offline_id="x", captured_at=T0)
    first = plan([visit], [outlet()])
    record = first.outcomes[0].record
    zone = timezone(timedelta(hours=8))  # the rep crossed into another zone between the lost answer and the retry
    respelled = dataclasses.replace(visit, captured_at=T0.astimezone(zone), state_vector=b"\x00")
    order = change(ORDER, "or1", order_fields("o1", ("p1", 2)), offline_id="y", captured_at=T0)
    first_order = plan([order], [outlet(), product()])
    as_float = dataclasses.replace(order, fields=order_fields("o1", ("p1", 2.0)), latitude=None)
    again = plan(
        [respelled, as_float],
        [outlet(), product(), record, first_order.outcomes[0].record],  # type: ignore[list-item]
        receipts=[*first.receipts.values(), *first_order.receipts.values()],
    )
    assert statuses(again) == ["DUPLICATE", "DUPLICATE"]


def test_other_content_under_a_used_offline_id_gets_its_own_refusal_and_leaves_the_first_one_alone():
    first = plan(_queue(), [outlet(), product()])
    refusal = first.outcomes[1].refusal
    fixed = plan(_queue()[1:2], [outlet("gone")], receipts=first.receipts.values(), refusals=[refusal])
    resolved = fixed.refusals[refusal.id]  # type: ignore[union-attr]
    assert resolved.status is RefusalStatus.RESOLVED
    other = dataclasses.replace(_queue()[1], record_id="v7")
    reused = plan([other], [outlet("gone")], receipts=fixed.receipts.values(), refusals=[resolved])
    answer = reused.outcomes[0].refusal
    assert answer is not None and answer.code == "OFFLINE_ID_REUSED" and answer.id != resolved.id
    assert answer.change is not None and answer.change["recordId"] == "v7"
    assert list(reused.refusals) == [answer.id]


def test_a_duplicate_with_an_unreadable_state_vector_answers_with_the_whole_state():
    doc = Doc(client_id=7)
    doc.get("fields", type=Map)["phone"] = "03-1"
    update = change(OUTLET, "o1", None, offline_id="u", crdt_update=doc.get_update())
    first = plan([update], [outlet()])
    merged = first.outcomes[0].record
    assert merged is not None and merged.crdt_state is not None
    again = plan(
        [dataclasses.replace(update, state_vector=b"\xff\xff\xff")], [merged], receipts=first.receipts.values()
    )
    assert statuses(again) == ["DUPLICATE"]
    assert again.outcomes[0].crdt_diff is None and again.outcomes[0].record == merged


def test_a_refusal_keeps_what_the_device_sent():
    result = plan(_queue()[1:2], [outlet()])
    refusal = result.outcomes[0].refusal
    assert refusal is not None and refusal.change is not None
    assert refusal.change["fields"] == {"outletId": "gone", "status": "PLANNED"}
    assert (refusal.change["recordType"], refusal.change["capturedAt"]) == ("VISIT", T0.isoformat())
