"""Record types, their sync policies and the shape of their fields."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class RecordType(Enum):
    OUTLET = "OUTLET"
    PRODUCT = "PRODUCT"
    VISIT = "VISIT"
    ORDER = "ORDER"
    WORK_ORDER = "WORK_ORDER"

    # Members are singletons compared by identity: hashing by identity (in C) keeps every record
    # key lookup (``(type, id)`` tuples, many per change) out of Enum.__hash__'s Python call.
    __hash__ = object.__hash__


class Policy(Enum):
    SHARED = "SHARED"  # CRDT merge, no owner
    REFERENCE = "REFERENCE"  # server-written, devices read
    OWNED = "OWNED"  # one rep owns it; conflicts prompt


POLICY = {
    RecordType.OUTLET: Policy.SHARED,
    RecordType.PRODUCT: Policy.REFERENCE,
    RecordType.VISIT: Policy.OWNED,
    RecordType.ORDER: Policy.OWNED,
    RecordType.WORK_ORDER: Policy.OWNED,
}

# Fields that point at another record, by record type.
REFERENCES: dict[RecordType, dict[str, RecordType]] = {
    RecordType.VISIT: {"outletId": RecordType.OUTLET},
    RecordType.ORDER: {"outletId": RecordType.OUTLET, "visitId": RecordType.VISIT},
    RecordType.WORK_ORDER: {"outletId": RecordType.OUTLET},
}


class Kind(Enum):
    TEXT = "text"
    NUMBER = "number"
    LATITUDE = "latitude"
    LONGITUDE = "longitude"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    ID = "id"
    ID_LIST = "id list"
    ORDER_LINES = "order lines"
    HOUR_ENTRIES = "hour entries"
    PHOTOS = "photos"  # [{attachmentId, sha256, capturedAt, latitude, longitude}]: bytes travel apart, over /files/


@dataclass(frozen=True)
class FieldSpec:
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    maximum: float = 0.0  # NUMBER: the largest value taken (0: NUMBER_LIMIT)


TEXT_LIMIT = 10_000
ID_LIMIT = 200
NUMBER_LIMIT = 1e9  # any amount (a price, a count) beyond this is a typo or an attack
QUANTITY_LIMIT = 1_000_000  # units on one order line
GEOFENCE_LIMIT = 100_000  # metres
TAG_LIMIT = 64  # characters in one tag
TAGS_PER_RECORD = 100

FIELDS: dict[RecordType, dict[str, FieldSpec]] = {
    RecordType.OUTLET: {
        "name": FieldSpec(Kind.TEXT),
        "address": FieldSpec(Kind.TEXT),
        "city": FieldSpec(Kind.TEXT),
        "latitude": FieldSpec(Kind.LATITUDE),
        "longitude": FieldSpec(Kind.LONGITUDE),
        "geofenceRadiusM": FieldSpec(Kind.NUMBER, maximum=GEOFENCE_LIMIT),
        "phone": FieldSpec(Kind.TEXT),
        "contactName": FieldSpec(Kind.TEXT),
        "channel": FieldSpec(Kind.TEXT),
        "active": FieldSpec(Kind.BOOLEAN),
        "repIds": FieldSpec(Kind.ID_LIST),  # the reps the outlet is assigned to (managers write it)
        "deleted": FieldSpec(Kind.BOOLEAN),
    },
    RecordType.PRODUCT: {
        "sku": FieldSpec(Kind.TEXT, required=True),
        "name": FieldSpec(Kind.TEXT, required=True),
        "unitPrice": FieldSpec(Kind.NUMBER, required=True),
        "active": FieldSpec(Kind.BOOLEAN),
    },
    RecordType.VISIT: {
        "outletId": FieldSpec(Kind.ID, required=True),
        "repId": FieldSpec(Kind.ID),
        "plannedAt": FieldSpec(Kind.DATETIME),
        "status": FieldSpec(Kind.TEXT, required=True, choices=("PLANNED", "CHECKED_IN", "COMPLETED", "CANCELLED")),
        "checkInAt": FieldSpec(Kind.DATETIME),
        "checkInLatitude": FieldSpec(Kind.LATITUDE),
        "checkInLongitude": FieldSpec(Kind.LONGITUDE),
        "completedAt": FieldSpec(Kind.DATETIME),
        "notes": FieldSpec(Kind.TEXT),
        "photos": FieldSpec(Kind.PHOTOS),
    },
    RecordType.ORDER: {
        "outletId": FieldSpec(Kind.ID, required=True),
        "visitId": FieldSpec(Kind.ID),
        "repId": FieldSpec(Kind.ID),
        "lines": FieldSpec(Kind.ORDER_LINES, required=True),
        "status": FieldSpec(Kind.TEXT, required=True, choices=("DRAFT", "SUBMITTED")),
        "photos": FieldSpec(Kind.PHOTOS),
    },
    RecordType.WORK_ORDER: {
        "outletId": FieldSpec(Kind.ID, required=True),
        "repId": FieldSpec(Kind.ID),
        "description": FieldSpec(Kind.TEXT),
        "status": FieldSpec(Kind.TEXT, required=True, choices=("OPEN", "IN_PROGRESS", "COMPLETED")),
        "resourceHours": FieldSpec(Kind.HOUR_ENTRIES),
        "completedAt": FieldSpec(Kind.DATETIME),
        "photos": FieldSpec(Kind.PHOTOS),
    },
}


class FieldError(ValueError):
    """A field that is missing or not of its declared kind."""

    def __init__(self, field: str, message: str, code: str = "INVALID_FIELD") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


def check_fields(record_type: RecordType, fields: dict[str, Any], *, whole: bool) -> None:
    """Raise FieldError for the first field that breaks the type's shape.

    ``whole`` records must carry every required field; patches need not.
    """
    specs = FIELDS[record_type]
    for name, value in fields.items():
        spec = specs.get(name)
        if spec is None:
            raise FieldError(_short(name), f"{record_type.value} has no field '{_short(name)}'.", "UNKNOWN_FIELD")
        if value is None and not spec.required:
            continue
        _check_value(name, spec, value)
    if whole:
        for name, spec in specs.items():
            if spec.required and fields.get(name) is None:
                raise FieldError(name, f"{record_type.value} needs '{name}', and it is missing.", "MISSING_FIELD")


def _check_value(name: str, spec: FieldSpec, value: Any) -> None:
    match spec.kind:
        case Kind.TEXT | Kind.ID:
            if not isinstance(value, str):
                raise FieldError(name, f"'{name}' must be text.")
            limit = ID_LIMIT if spec.kind is Kind.ID else TEXT_LIMIT
            if len(value) > limit:
                raise FieldError(name, f"'{name}' is longer than {limit} characters.")
            if spec.kind is Kind.ID and not value.strip():
                raise FieldError(name, f"'{name}' must be a record id, not blank.")
            if spec.choices and value not in spec.choices:
                raise FieldError(name, f"'{name}' must be one of {', '.join(spec.choices)}.")
        case Kind.NUMBER:
            top = spec.maximum or NUMBER_LIMIT
            if not 0 <= _finite_number(name, value) <= top:
                raise FieldError(name, f"'{name}' must be between 0 and {top:,.0f}.")
        case Kind.LATITUDE:
            if not -90 <= _finite_number(name, value) <= 90:
                raise FieldError(name, f"'{name}' must be a latitude between -90 and 90.")
        case Kind.LONGITUDE:
            if not -180 <= _finite_number(name, value) <= 180:
                raise FieldError(name, f"'{name}' must be a longitude between -180 and 180.")
        case Kind.BOOLEAN:
            if not isinstance(value, bool):
                raise FieldError(name, f"'{name}' must be true or false.")
        case Kind.DATETIME:
            check_timestamp(name, value)
        case Kind.ID_LIST:
            if not isinstance(value, list) or len(value) > 1000:
                raise FieldError(name, f"'{name}' must be a list of at most 1000 ids.")
            for index, item in enumerate(value):
                _check_value(f"{name}[{index}]", FieldSpec(Kind.ID), item)
            if len(set(value)) != len(value):
                raise FieldError(name, f"'{name}' lists an id more than once.")
        case Kind.ORDER_LINES:
            _check_list(name, value, _check_order_line)
        case Kind.HOUR_ENTRIES:
            _check_list(name, value, _check_hour_entry)
        case Kind.PHOTOS:
            _check_list(name, value, _check_photo)


def _finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(name, f"'{name}' must be a finite number.")
    return float(value)


def check_timestamp(name: str, value: Any) -> datetime:
    """An ISO 8601 timestamp that carries its UTC offset."""
    if not isinstance(value, str):
        raise FieldError(name, f"'{name}' must be an ISO 8601 timestamp.")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(name, f"'{name}' is not an ISO 8601 timestamp: {_short(value, 40)!r}.") from None
    if stamp.utcoffset() is None:
        raise FieldError(
            name,
            f"'{name}' has no UTC offset; send it as e.g. 2026-05-01T09:30:00+08:00.",
            "MISSING_UTC_OFFSET",
        )
    return stamp


def _check_list(name: str, value: Any, check_item: Any) -> None:
    if not isinstance(value, list):
        raise FieldError(name, f"'{name}' must be a list.")
    if len(value) > 1000:
        raise FieldError(name, f"'{name}' has more than 1000 entries.")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise FieldError(f"{name}[{index}]", f"'{name}[{index}]' must be an object.")
        check_item(f"{name}[{index}]", item)


def _check_order_line(name: str, line: dict[str, Any]) -> None:
    _only_keys(name, line, {"productId", "quantity", "unitPrice"})
    _check_value(f"{name}.productId", FieldSpec(Kind.ID), line.get("productId"))
    # (zero and negative quantities are the rules' INVALID_QUANTITY, with the product named)
    if _finite_number(f"{name}.quantity", line.get("quantity")) > QUANTITY_LIMIT:
        raise FieldError(f"{name}.quantity", f"'{name}.quantity' must be at most {QUANTITY_LIMIT:,}.")
    if line.get("unitPrice") is not None:
        _check_value(f"{name}.unitPrice", FieldSpec(Kind.NUMBER), line["unitPrice"])


def _check_hour_entry(name: str, entry: dict[str, Any]) -> None:
    _only_keys(name, entry, {"hours", "loggedAt"})
    hours = _finite_number(f"{name}.hours", entry.get("hours"))
    if not 0 < hours <= 24:
        raise FieldError(f"{name}.hours", f"'{name}.hours' must be more than 0 and at most 24.")
    check_timestamp(f"{name}.loggedAt", entry.get("loggedAt"))


def _check_photo(name: str, photo: dict[str, Any]) -> None:
    """A photo the record points at; whether its bytes have arrived never decides the change."""
    _only_keys(name, photo, {"attachmentId", "sha256", "capturedAt", "latitude", "longitude"})
    _check_value(f"{name}.attachmentId", FieldSpec(Kind.ID), photo.get("attachmentId"))
    sha256 = photo.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256)):
        raise FieldError(f"{name}.sha256", f"'{name}.sha256' must be 64 lowercase hex digits.")
    if photo.get("capturedAt") is not None:
        check_timestamp(f"{name}.capturedAt", photo["capturedAt"])
    for key, kind in (("latitude", Kind.LATITUDE), ("longitude", Kind.LONGITUDE)):
        if photo.get(key) is not None:
            _check_value(f"{name}.{key}", FieldSpec(kind), photo[key])


def check_tags(before: list[str], after: list[str]) -> None:
    """Tags a change adds: non-blank, printable, at most TAG_LIMIT characters; at most TAGS_PER_RECORD in all."""
    known = set(before)
    for tag in after:
        if tag in known:
            continue
        if not tag.strip() or len(tag) > TAG_LIMIT or not tag.isprintable():
            raise FieldError("tags", f"a tag must be 1 to {TAG_LIMIT} printable characters; got {_short(tag)!r}.")
    if len(after) > max(len(before), TAGS_PER_RECORD):
        raise FieldError("tags", f"a record holds at most {TAGS_PER_RECORD} tags; this change makes {len(after)}.")


def _only_keys(name: str, item: dict[str, Any], allowed: set[str]) -> None:
    for key in item:
        if key not in allowed:
            raise FieldError(f"{name}.{_short(key)}", f"'{name}' has no field '{_short(key)}'.", "UNKNOWN_FIELD")


def _short(text: str, limit: int = 60) -> str:
    """Quoted input stays short in reasons, whatever was sent."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
