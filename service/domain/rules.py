"""Validation rules: the one place that says which changes the server accepts.

Shape rules look at the change alone (fields of the right kind, timestamps with
an offset): a failure cannot be fixed by editing other data, so the rep
acknowledges it. Data rules look at the records behind the change (the outlet,
the products): a failure names the record to fix and blocks until it is fixed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.domain.changes import Change, Operation
from service.domain.record_types import POLICY, FieldError, Policy, RecordType, check_fields
from service.domain.records import Record, RecordKey
from service.domain.refusals import RefusalAction, Verdict

ACK, FIX = RefusalAction.ACKNOWLEDGE, RefusalAction.FIX_DATA


@dataclass(frozen=True)
class RuleSettings:
    default_geofence_radius_m: float = 200.0
    max_record_bytes: int = 256 * 1024
    crdt_compact_bytes: int = 4096  # a shared record's CRDT state past this, mostly history, is compacted
    max_crdt_update_bytes: int = 256 * 1024
    max_unseen_writes: int = 1000  # a shared record's field writes no other write has seen (docs/merge-rule.md)
    max_clock_skew: timedelta = timedelta(hours=24)  # how far ahead of the server a capture may be


EARLIEST_CAPTURE = datetime(2020, 1, 1, tzinfo=UTC)  # no field app captured anything earlier


def check_shape(change: Change, settings: RuleSettings, now: datetime) -> Verdict | None:
    """Rules on the change alone."""
    verdict = _check_capture(change, settings, now) or _check_geo_stamp(change)
    if verdict is not None:
        return verdict
    return _check_payload(change, settings)


def _check_capture(change: Change, settings: RuleSettings, now: datetime) -> Verdict | None:
    if change.captured_at.utcoffset() is None:
        return Verdict(
            "MISSING_UTC_OFFSET",
            f"Change {change.offline_id} was captured at {change.captured_at.isoformat()} "
            "without a UTC offset, so when it happened is ambiguous. "
            "The app must send capturedAt with its offset.",
            ACK,
            field="capturedAt",
        )
    if not EARLIEST_CAPTURE <= change.captured_at <= now + settings.max_clock_skew:
        return Verdict(
            "IMPLAUSIBLE_TIMESTAMP",
            f"Change {change.offline_id} says it was captured at {change.captured_at.isoformat()}, which is before "
            f"2020 or more than {settings.max_clock_skew} ahead of the server. Check the device's clock.",
            ACK,
            field="capturedAt",
        )
    return None


def _check_geo_stamp(change: Change) -> Verdict | None:
    for name, value, bound in (("latitude", change.latitude, 90), ("longitude", change.longitude, 180)):
        if value is not None and not (math.isfinite(value) and -bound <= value <= bound):
            return Verdict(
                "INVALID_FIELD", f"The geo-stamp {name} must be a number between -{bound} and {bound}.", ACK, name
            )
    return None


def _check_payload(change: Change, settings: RuleSettings) -> Verdict | None:
    policy = POLICY[change.record_type]
    if change.crdt_update is not None and len(change.crdt_update) > settings.max_crdt_update_bytes:
        return Verdict(
            "TOO_LARGE",
            f"The CRDT update for {change.record_type.value} {change.record_id} is "
            f"{len(change.crdt_update)} bytes; the limit is {settings.max_crdt_update_bytes}.",
            ACK,
            field="crdtUpdate",
        )
    if policy is not Policy.SHARED and (change.crdt_update or change.state_vector):
        return Verdict(
            "INVALID_CHANGE",
            f"{change.record_type.value} is not a shared record; send fields, not a CRDT update.",
            ACK,
            field="crdtUpdate",
        )
    if change.operation is Operation.DELETE:
        return None
    if policy is Policy.SHARED and change.fields is None and change.crdt_update is None:
        return Verdict("MISSING_FIELD", "A change to a shared record needs fields or a crdtUpdate.", ACK, "fields")
    if policy is not Policy.SHARED and change.fields is None:
        return Verdict("MISSING_FIELD", f"{change.record_type.value} needs its fields.", ACK, "fields")
    if change.fields is not None:
        try:
            check_fields(change.record_type, _plain_fields(change), whole=policy is not Policy.SHARED)
        except FieldError as error:
            return Verdict(error.code, f"{_subject(change)}: {error}", ACK, field=error.field)
        size = len(json.dumps(change.fields))
        if size > settings.max_record_bytes:
            return Verdict(
                "TOO_LARGE",
                f"{_subject(change)} is {size} bytes of fields; the limit is {settings.max_record_bytes}.",
                ACK,
                field="fields",
            )
    return None


def _plain_fields(change: Change) -> dict[str, object]:
    fields = dict(change.fields or {})
    if POLICY[change.record_type] is Policy.SHARED:
        fields.pop("tags", None)  # checked when the patch is turned into a CRDT update
        fields.pop("notes", None)  # collaborative text: checked by who writes it
    return fields


def _subject(change: Change) -> str:
    return f"{change.record_type.value.replace('_', ' ').title()} {change.record_id}"


Lookup = Mapping[RecordKey, Record]
DataRule = Callable[[Change, Lookup, RuleSettings], Verdict | None]


def outlet_usable(change: Change, records: Lookup, settings: RuleSettings) -> Verdict | None:
    outlet_id = (change.fields or {}).get("outletId")
    if not isinstance(outlet_id, str):
        return None
    outlet = records.get((RecordType.OUTLET, outlet_id))
    if outlet is None or outlet.deleted or outlet.fields.get("deleted") is True:
        return Verdict(
            "OUTLET_NOT_FOUND",
            f"{_subject(change)} is for outlet {outlet_id}, which does not exist on the server. "
            "Create the outlet or correct the record's outlet.",
            FIX,
            field="outletId",
            related=(RecordType.OUTLET, outlet_id),
        )
    if outlet.fields.get("active") is False:
        return Verdict(
            "OUTLET_INACTIVE",
            f"{outlet.display_name()} is inactive, so {_subject(change).lower()} cannot be recorded "
            "against it. Reactivate the outlet or move the record to an active outlet.",
            FIX,
            field="outletId",
            related=outlet.key,
        )
    return None


def check_in_inside_geofence(change: Change, records: Lookup, settings: RuleSettings) -> Verdict | None:
    fields = change.fields or {}
    if change.record_type is not RecordType.VISIT or fields.get("status") not in ("CHECKED_IN", "COMPLETED"):
        return None
    latitude = fields.get("checkInLatitude", change.latitude)
    longitude = fields.get("checkInLongitude", change.longitude)
    outlet = records.get((RecordType.OUTLET, str(fields.get("outletId"))))
    if outlet is None or latitude is None or longitude is None:
        return None
    if outlet.fields.get("latitude") is None or outlet.fields.get("longitude") is None:
        return Verdict(
            "OUTLET_NO_COORDINATES",
            f"{outlet.display_name()} has no coordinates, so the check-in cannot be checked "
            "against its geofence. Add latitude/longitude to the outlet.",
            FIX,
            field="checkInLatitude",
            related=outlet.key,
        )
    radius = outlet.fields.get("geofenceRadiusM") or settings.default_geofence_radius_m
    distance = distance_m(latitude, longitude, outlet.fields["latitude"], outlet.fields["longitude"])
    if distance > radius:
        return Verdict(
            "OUTSIDE_GEOFENCE",
            f"The check-in was {distance:,.0f} m from {outlet.display_name()}, outside its "
            f"{radius:,.0f} m geofence. Correct the outlet's coordinates or its geofence radius.",
            FIX,
            field="checkInLatitude",
            related=outlet.key,
        )
    return None


def order_lines_valid(change: Change, records: Lookup, settings: RuleSettings) -> Verdict | None:
    if change.record_type is not RecordType.ORDER:
        return None
    for index, line in enumerate((change.fields or {}).get("lines") or []):
        product_id = line["productId"]
        product = records.get((RecordType.PRODUCT, product_id))
        if product is None or product.deleted:
            return Verdict(
                "PRODUCT_NOT_FOUND",
                f"Order {change.record_id} line {index + 1} is for product {product_id}, which does "
                "not exist on the server. Create the product or correct the order line.",
                FIX,
                field=f"lines[{index}].productId",
                related=(RecordType.PRODUCT, product_id),
            )
        if product.fields.get("active") is False:
            return Verdict(
                "PRODUCT_INACTIVE",
                f"Order {change.record_id} line {index + 1} is for {product.display_name()}, which "
                "is inactive. Reactivate the product or remove it from the order.",
                FIX,
                field=f"lines[{index}].productId",
                related=product.key,
            )
        if line["quantity"] <= 0:
            return Verdict(
                "INVALID_QUANTITY",
                f"Order {change.record_id} line {index + 1} ({product.display_name()}) has quantity "
                f"{line['quantity']}; quantities must be positive.",
                ACK,
                field=f"lines[{index}].quantity",
            )
    return None


DATA_RULES: dict[RecordType, tuple[DataRule, ...]] = {
    RecordType.VISIT: (outlet_usable, check_in_inside_geofence),
    RecordType.ORDER: (outlet_usable, order_lines_valid),
    RecordType.WORK_ORDER: (outlet_usable,),
}


def check_data(change: Change, records: Lookup, settings: RuleSettings) -> Verdict | None:
    """Rules on the data behind a change as the device sent it (none reads the repId a push defaults); the first
    failing rule answers."""
    if change.operation is Operation.DELETE:
        return None
    for rule in DATA_RULES.get(change.record_type, ()):
        verdict = rule(change, records, settings)
        if verdict is not None:
            return verdict
    return None


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))
