"""Validation rules: each refusal names the data at fault and says what to do."""

from datetime import datetime

import pytest

from service.domain.changes import Change
from service.domain.record_types import RecordType
from service.domain.refusals import RefusalAction
from tests.domain.helpers import plan
from tests.factories import change, order_fields, outlet, product, work_order_fields

VISIT, ORDER = RecordType.VISIT, RecordType.ORDER
FIX, ACK = RefusalAction.FIX_DATA, RefusalAction.ACKNOWLEDGE


def refusal_of(one: Change, *records):
    result = plan([one], records)
    return result.outcomes[0].refusal


def check_in(**extra):
    return {"outletId": "o1", "status": "CHECKED_IN", "checkInAt": "2026-11-20T09:00:00+08:00", **extra}


def test_a_visit_to_an_inactive_outlet_names_the_outlet():
    refusal = refusal_of(change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}), outlet(active=False))
    assert (refusal.code, refusal.action, refusal.field) == ("OUTLET_INACTIVE", FIX, "outletId")
    assert "Outlet 'Kedai Ali' is inactive" in refusal.reason
    assert refusal.related == (RecordType.OUTLET, "o1")


def test_a_check_in_at_an_outlet_without_coordinates_cannot_be_geofenced():
    refusal = refusal_of(
        change(VISIT, "v1", check_in(checkInLatitude=3.139, checkInLongitude=101.6869)),
        outlet(latitude=None, longitude=None),
    )
    assert refusal.code == "OUTLET_NO_COORDINATES" and refusal.action is FIX
    assert refusal.reason == (
        "Outlet 'Kedai Ali' has no coordinates, so the check-in cannot be checked against its geofence. "
        "Add latitude/longitude to the outlet."
    )


def test_a_check_in_outside_the_geofence_is_refused_and_inside_is_applied():
    far = change(VISIT, "v1", check_in(checkInLatitude=3.15, checkInLongitude=101.6869))
    refusal = refusal_of(far, outlet())
    assert refusal.code == "OUTSIDE_GEOFENCE" and "1,223 m from Outlet 'Kedai Ali'" in refusal.reason
    near = change(VISIT, "v2", check_in(), latitude=3.1391, longitude=101.6869)
    assert plan([near], [outlet()]).outcomes[0].status.value == "APPLIED"
    assert refusal_of(far, outlet(geofenceRadiusM=2000)) is None


@pytest.mark.parametrize(
    ("lines", "records", "code", "action"),
    [
        ([("p9", 1)], [outlet()], "PRODUCT_NOT_FOUND", FIX),
        ([("p1", 1)], [outlet(), product(active=False)], "PRODUCT_INACTIVE", FIX),
        ([("p1", -2)], [outlet(), product()], "INVALID_QUANTITY", ACK),
    ],
)
def test_order_lines_need_active_products_and_positive_quantities(lines, records, code, action):
    refusal = refusal_of(change(ORDER, "or1", order_fields("o1", *lines)), *records)
    assert (refusal.code, refusal.action) == (code, action)
    assert refusal.field.startswith("lines[0]")


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"status": "PLANNED"}, "MISSING_FIELD", "outletId"),
        ({"outletId": "o1", "status": "ASLEEP"}, "INVALID_FIELD", "status"),
        ({"outletId": "o1", "status": "PLANNED", "colour": "red"}, "UNKNOWN_FIELD", "colour"),
        (
            {"outletId": "o1", "status": "PLANNED", "plannedAt": "2026-11-20T09:00:00"},
            "MISSING_UTC_OFFSET",
            "plannedAt",
        ),
        ({"outletId": "o1", "status": "PLANNED", "checkInLatitude": 91}, "INVALID_FIELD", "checkInLatitude"),
        ({"outletId": 7, "status": "PLANNED"}, "INVALID_FIELD", "outletId"),
    ],
)
def test_malformed_fields_are_refused_for_the_rep_to_acknowledge(fields, code, field):
    refusal = refusal_of(change(VISIT, "v1", fields), outlet())
    assert (refusal.code, refusal.field, refusal.action) == (code, field, ACK)


def test_captured_at_without_an_offset_is_refused():
    refusal = refusal_of(
        change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, captured_at=datetime(2026, 11, 20, 9)), outlet()
    )
    assert (refusal.code, refusal.field) == ("MISSING_UTC_OFFSET", "capturedAt")


def test_work_order_hours_must_be_sane():
    fields = work_order_fields(resourceHours=[{"hours": 30, "loggedAt": "2026-11-20T10:00:00+08:00"}])
    refusal = refusal_of(change(RecordType.WORK_ORDER, "w1", fields), outlet())
    assert (refusal.code, refusal.field) == ("INVALID_FIELD", "resourceHours[0].hours")
