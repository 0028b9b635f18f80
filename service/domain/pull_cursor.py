"""Pull cursors: opaque positions in the global change sequence."""

from __future__ import annotations

import base64
import json


class InvalidCursor(ValueError):
    pass


def encode_cursor(seq: int, watermark: int | None) -> str:
    payload = {"s": seq} if watermark is None else {"s": seq, "w": watermark}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int | None]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        seq, watermark = payload["s"], payload.get("w")
        if not _position(seq) or not (watermark is None or _position(watermark)):
            raise ValueError
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise InvalidCursor("the pull cursor is not one this server gave out") from None
    return seq, watermark


def _position(value: object) -> bool:
    """A place in the sequence: a non-negative integer that fits the store's 64-bit numbers."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
