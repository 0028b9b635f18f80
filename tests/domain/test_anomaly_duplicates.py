"""CONTENT_DUPLICATE: a phantom order, the same rep, outlet and lines under another offlineId."""

from service.domain.anomalies import AnomalyCode, Severity
from service.domain.record_types import RecordType
from tests.domain.flagging import Phone, at
from tests.factories import change, order_fields, owned

ORDER = RecordType.ORDER


def order(record_id: str, minutes: float, *lines: tuple[str, float], outlet: str = "o1"):
    return change(ORDER, record_id, order_fields(outlet, *lines), captured_at=at(minutes))


def test_the_same_lines_at_the_same_outlet_within_the_window_are_flagged():
    phone = Phone()
    flags = phone.push([order("or1", 0, ("p1", 2), ("p2", 1)), order("or2", 14.9, ("p2", 1.0), ("p1", 2))])
    assert [(f.code, f.severity, f.record_id) for f in flags] == [(AnomalyCode.CONTENT_DUPLICATE, Severity.HIGH, "or2")]
    assert flags[0].reason.startswith("Order or2 repeats order or1 line for line (outlet o1: 2 x p1, 1 x p2)")
    assert "captured 15 minutes apart (line 15 minutes)" in flags[0].reason


def test_just_outside_the_window_other_lines_or_another_outlet_are_different_orders():
    phone = Phone()
    assert phone.codes([order("or1", 0, ("p1", 2)), order("or2", 15.1, ("p1", 2))]) == []
    assert phone.codes([order("or3", 30, ("p1", 4)), order("or4", 31, ("p1", 3))]) == []
    assert phone.codes([order("or5", 40, ("p1", 9)), order("or6", 41, ("p1", 9), outlet="o2")]) == []


def test_the_window_spans_pushes_and_an_edit_of_the_same_order_is_no_duplicate():
    phone = Phone()
    assert phone.codes([order("or1", 0, ("p1", 2))]) == []
    assert phone.codes([order("or2", 5, ("p1", 2))]) == [AnomalyCode.CONTENT_DUPLICATE]
    stored = owned(ORDER, "or1", order_fields("o1", ("p1", 2)))
    edit = change(ORDER, "or1", order_fields("o1", ("p1", 2), status="DRAFT"), base_version=1, captured_at=at(6))
    assert phone.codes([edit], stored={stored.key: stored}) == []
