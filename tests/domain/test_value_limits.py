"""Numbers and tags in pushed changes stay within documented ranges; each refusal names the field and the limit."""

from __future__ import annotations

import pytest

from service.domain.changes import Change
from service.domain.record_types import (
    GEOFENCE_LIMIT,
    NUMBER_LIMIT,
    QUANTITY_LIMIT,
    TAG_LIMIT,
    TAGS_PER_RECORD,
    RecordType,
)
from tests.domain.helpers import plan
from tests.factories import change, order_fields, outlet, product, work_order_fields

ORDER, OUTLET, WORK_ORDER = RecordType.ORDER, RecordType.OUTLET, RecordType.WORK_ORDER


def outcome(one: Change, *records):
    return plan([one], [outlet(), product(), *records]).outcomes[0]


def refused(one: Change, *records) -> tuple[str | None, str]:
    result = outcome(one, *records)
    assert result.status.value == "REFUSED", result
    assert result.refusal is not None
    return result.refusal.field, result.refusal.reason


def accepted(one: Change, *records) -> bool:
    return outcome(one, *records).status.value in ("APPLIED", "MERGED")


def order(quantity: float, unit_price: float | None = None) -> Change:
    line = {"productId": "p1", "quantity": quantity, **({"unitPrice": unit_price} if unit_price is not None else {})}
    return change(ORDER, "r1", order_fields(lines=[line]))


@pytest.mark.parametrize("quantity", [1e308, QUANTITY_LIMIT + 1])
def test_an_order_quantity_beyond_its_limit_is_refused_naming_the_limit(quantity: float):
    field, reason = refused(order(quantity))
    assert field == "lines[0].quantity"
    assert "must be at most 1,000,000" in reason


@pytest.mark.parametrize("quantity", [0, -5])
def test_an_order_quantity_that_is_not_positive_is_refused(quantity: float):
    field, reason = refused(order(quantity))
    assert field == "lines[0].quantity" and "quantities must be positive" in reason


def test_order_quantities_and_prices_at_their_limits_are_taken():
    assert accepted(order(QUANTITY_LIMIT, NUMBER_LIMIT))
    assert accepted(order(0.5, 0))


def test_prices_and_geofences_beyond_their_limits_are_refused():
    field, reason = refused(order(1, NUMBER_LIMIT * 10))
    assert field == "lines[0].unitPrice" and "between 0 and 1,000,000,000" in reason
    field, reason = refused(change(OUTLET, "o2", {"name": "Kedai", "geofenceRadiusM": GEOFENCE_LIMIT + 1}))
    assert field == "geofenceRadiusM" and "between 0 and 100,000" in reason
    assert accepted(change(OUTLET, "o3", {"name": "Kedai", "geofenceRadiusM": GEOFENCE_LIMIT}))


def test_hours_stay_within_a_day():
    entry = {"hours": 24.01, "loggedAt": "2026-11-20T09:00:00+08:00"}
    field, reason = refused(change(WORK_ORDER, "w1", work_order_fields(resourceHours=[entry])))
    assert field == "resourceHours[0].hours" and "at most 24" in reason


@pytest.mark.parametrize(
    "tag",
    ["", "   ", "a\x00b", "x" * (TAG_LIMIT + 1), "right\u202eleft"],
    ids=["empty", "blank", "nul", "long", "bidi"],
)
def test_a_tag_that_is_blank_unprintable_or_too_long_is_refused(tag: str):
    field, reason = refused(change(OUTLET, "o2", {"name": "Kedai", "tags": [tag]}))
    assert field == "tags" and f"1 to {TAG_LIMIT} printable characters" in reason


def test_an_outlet_holds_at_most_a_hundred_tags():
    tags = [f"tag {i}" for i in range(TAGS_PER_RECORD - 1)] + ["x" * TAG_LIMIT]
    assert accepted(change(OUTLET, "o2", {"name": "Kedai", "tags": tags}))
    field, reason = refused(change(OUTLET, "o2", {"name": "Kedai", "tags": [*tags, "one more"]}))
    assert field == "tags" and f"at most {TAGS_PER_RECORD} tags" in reason and "makes 101" in reason
