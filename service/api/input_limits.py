"""Limits on the scalar inputs of operations, checked at the edge before anything is stored.

Each refusal is a ``BAD_REQUEST`` that names the field and its limit. (The fields of pushed
changes are the record types' business: out-of-range values there are refused per change,
see ``service.domain.record_types``.)
"""

from __future__ import annotations

import unicodedata

from service.api.context import BadRequest

QUEUE_DEPTH_MAX = 1_000_000  # changes a device may report holding
APP_VERSION_MAX = 64
DEVICE_NAME_MAX = 100
PLATFORM_MAX = 32
USER_NAME_MAX = 200
ID_MAX = 200
BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}  # text that reads other than it is


def printable(value: str) -> bool:
    """No control characters, lone surrogates or bidirectional overrides."""
    if value.isascii():  # ASCII holds no surrogates or overrides; its only non-printables are controls
        return value.isprintable()
    return not any(
        unicodedata.category(c) in ("Cc", "Cs") or unicodedata.bidirectional(c) in BIDI_CONTROLS for c in value
    )


def text(name: str, value: str, limit: int) -> str:
    """Non-blank printable text of at most ``limit`` characters."""
    if not value.strip() or len(value) > limit:
        raise BadRequest(f"{name} must be 1 to {limit} characters; got {len(value)}")
    if not printable(value):
        raise BadRequest(f"{name} must not contain control characters or bidirectional overrides")
    return value


def identifier(name: str, value: str) -> str:
    """A client-generated id, taken exactly as sent (blanks included)."""
    if not value or len(value) > ID_MAX:
        raise BadRequest(f"{name} must be 1 to {ID_MAX} characters")
    if not printable(value):
        raise BadRequest(f"{name} must not contain control characters or bidirectional overrides")
    return value


def optional_text(name: str, value: str | None, limit: int) -> str | None:
    return None if value is None else text(name, value, limit)


def queue_depth(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= QUEUE_DEPTH_MAX:
        raise BadRequest(f"queueDepth must be between 0 and {QUEUE_DEPTH_MAX}; got {value}")
    return value
