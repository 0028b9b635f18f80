"""Geo-stamp flags: GEO_NULL_ISLAND, GEO_REPEATED and GEO_JUMP, over one device's stamps in capture order."""

from __future__ import annotations

from service.domain.anomalies.baselines import DeviceBaseline, GeoStamp
from service.domain.anomalies.flags import AnomalyCode, Finding, Severity
from service.domain.anomalies.thresholds import AnomalyThresholds
from service.domain.anomalies.wording import place, span, subject, when
from service.domain.changes import Change
from service.domain.record_types import RecordType, check_timestamp
from service.domain.records import Record
from service.domain.rules import distance_m


def stamp_of(change: Change, before: Record | None) -> GeoStamp | None:
    """Where the device says it was: the change's geo-stamp, else a visit's new check-in position."""
    fields = change.fields or {}
    outlet = change.record_id if change.record_type is RecordType.OUTLET else fields.get("outletId")
    outlet_id = outlet if isinstance(outlet, str) else None
    label = subject(change).lower()
    if change.latitude is not None and change.longitude is not None:
        return GeoStamp(change.latitude, change.longitude, change.captured_at, outlet_id, label)
    latitude, longitude = fields.get("checkInLatitude"), fields.get("checkInLongitude")
    if change.record_type is not RecordType.VISIT or latitude is None or longitude is None:
        return None
    known = before.fields if before is not None else {}
    if (known.get("checkInLatitude"), known.get("checkInLongitude")) == (latitude, longitude):
        return None  # the check-in it already had, sent again with a later change
    at = check_timestamp("checkInAt", fields["checkInAt"]) if fields.get("checkInAt") else change.captured_at
    return GeoStamp(float(latitude), float(longitude), at, outlet_id, f"the check-in of {label}")


def check_stamp(stamp: GeoStamp, device: DeviceBaseline, t: AnomalyThresholds) -> Finding | None:
    """Flag ``stamp`` against the device's earlier ones, and remember it."""
    if distance_m(stamp.latitude, stamp.longitude, 0.0, 0.0) <= t.null_island_km * 1000:
        return _null_island(stamp)
    return _repeated(stamp, device, t) or _jump(stamp, device, t)


def _null_island(stamp: GeoStamp) -> Finding:
    return Finding(
        AnomalyCode.GEO_NULL_ISLAND,
        Severity.MEDIUM,
        f"{stamp.label.capitalize()} is geo-stamped at {place(stamp.latitude, stamp.longitude)}, in the sea off "
        "Africa where phones put a fix they do not have: where it happened is unknown.",
        {"latitude": stamp.latitude, "longitude": stamp.longitude, "capturedAt": stamp.at.isoformat()},
    )


def _repeated(stamp: GeoStamp, device: DeviceBaseline, t: AnomalyThresholds) -> Finding | None:
    earlier = next((s for s in device.stamps if s.place == stamp.place), None)
    if earlier is None:
        device.stamps = [*device.stamps, stamp][-t.repeat_memory :]
        return None
    if earlier.outlet_id in (None, stamp.outlet_id) or stamp.outlet_id is None:
        return None
    return Finding(
        AnomalyCode.GEO_REPEATED,
        Severity.HIGH,
        f"{stamp.label.capitalize()} at outlet {stamp.outlet_id} is geo-stamped at exactly "
        f"{place(stamp.latitude, stamp.longitude)}, the same coordinates as {earlier.label} at outlet "
        f"{earlier.outlet_id} ({when(earlier.at)}): real fixes at two outlets never agree to the metre.",
        {
            "latitude": stamp.latitude,
            "longitude": stamp.longitude,
            "outletId": stamp.outlet_id,
            "earlierOutletId": earlier.outlet_id,
            "earlier": earlier.label,
            "earlierCapturedAt": earlier.at.isoformat(),
        },
    )


def _move(a: GeoStamp, b: GeoStamp) -> tuple[float, float]:
    """Kilometres and hours between two stamps."""
    km = distance_m(a.latitude, a.longitude, b.latitude, b.longitude) / 1000
    return km, abs((b.at - a.at).total_seconds()) / 3600


def plausible(a: GeoStamp, b: GeoStamp, t: AnomalyThresholds) -> bool:
    """A rep can get from ``a`` to ``b`` in the time between them, by road or by air."""
    km, hours = _move(a, b)
    return (
        km < t.jump_min_km
        or hours >= km / t.max_ground_speed_kmh
        or hours >= t.flight_overhead_hours + km / t.flight_speed_kmh
    )


def _jump(stamp: GeoStamp, device: DeviceBaseline, t: AnomalyThresholds) -> Finding | None:
    """A stamp no earlier one explains; a single outlier does not make its successor jump back."""
    trusted, suspect = device.trusted, device.suspect
    if trusted is None or plausible(trusted, stamp, t) or (suspect is not None and plausible(suspect, stamp, t)):
        device.trusted, device.suspect = stamp, None
        return None
    device.suspect = stamp
    km, hours = _move(trusted, stamp)
    speed = km / hours if hours else float("inf")
    faster_than_flying = hours < km / t.flight_speed_kmh
    shown_speed = "instantly" if hours == 0 else f"{speed:,.0f} km/h"
    return Finding(
        AnomalyCode.GEO_JUMP,
        Severity.HIGH if faster_than_flying else Severity.MEDIUM,
        f"{stamp.label.capitalize()} is geo-stamped {km:,.1f} km from where this device was {span(hours)} before "
        f"({trusted.label}, {when(trusted.at)}): {shown_speed}, faster than {t.max_ground_speed_kmh:,.0f} km/h by "
        f"road and sooner than a flight ({t.flight_overhead_hours:g} h + {km / t.flight_speed_kmh:.1f} h in the air).",
        {
            "km": round(km, 3),
            "hours": round(hours, 4),
            "kmh": None if hours == 0 else round(speed, 1),
            "from": {"latitude": trusted.latitude, "longitude": trusted.longitude, "at": trusted.at.isoformat()},
            "to": {"latitude": stamp.latitude, "longitude": stamp.longitude, "at": stamp.at.isoformat()},
            "maxGroundSpeedKmh": t.max_ground_speed_kmh,
            "flightSpeedKmh": t.flight_speed_kmh,
            "flightOverheadHours": t.flight_overhead_hours,
        },
    )
