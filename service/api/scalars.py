"""The DateTime, JSON and Base64 scalars of the protocol."""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NewType

import strawberry
from bson.tz_util import utc as bson_utc

MAX_JSON_DEPTH = 8


def serialize_datetime(value: datetime) -> str:
    """Outputs are UTC with ``Z`` (a value without an offset is UTC). The store's datetimes carry
    PyMongo's ``utc``, a tzinfo written in Python: known to be UTC, it is not asked its offset."""
    zone = value.tzinfo
    if zone is not bson_utc and zone is not UTC:
        offset = value.utcoffset()
        if offset:
            value -= offset
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_datetime(value: Any) -> datetime:
    """ISO 8601. A value without an offset parses (naive) so a push can refuse it per change;
    everywhere else resolvers call ``require_offset``."""
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO 8601 string")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {value[:40]!r}") from None


def optional_id(value: str | None) -> strawberry.ID | None:
    return strawberry.ID(value) if value is not None else None


def require_offset(value: datetime, name: str) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(f"{name} needs a UTC offset, e.g. 2026-05-01T09:30:00+08:00")
    return value.astimezone(UTC)


def parse_json(value: Any) -> Any:
    _check_json(value, 0)
    return value


def _check_json(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("JSON numbers must be finite")
    if isinstance(value, dict):
        for item in value.values():
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


def parse_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("Base64 must be a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not valid standard base64") from None


if TYPE_CHECKING:  # to the type checker they are the Python values they carry
    DateTime = datetime
    JSON = Any
    Base64 = bytes
else:
    DateTime = NewType("DateTime", datetime)
    JSON = NewType("JSON", object)
    Base64 = NewType("Base64", bytes)

SCALARS: dict[object, Any] = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description="ISO 8601 date-time. Inputs carry a UTC offset; outputs are UTC with Z.",
        serialize=serialize_datetime,
        parse_value=parse_datetime,
    ),
    JSON: strawberry.scalar(
        name="JSON",
        description="Any JSON value (objects nest at most 8 levels; numbers are finite).",
        serialize=lambda value: value,
        parse_value=parse_json,
    ),
    Base64: strawberry.scalar(
        name="Base64",
        description="Standard base64 of bytes.",
        serialize=lambda value: base64.b64encode(value).decode(),
        parse_value=parse_base64,
    ),
}
