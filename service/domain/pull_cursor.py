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
        if not isinstance(seq, int) or seq < 0 or not (watermark is None or isinstance(watermark, int)):
            raise ValueError
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise InvalidCursor("the pull cursor is not one this server gave out") from None
    return seq, watermark
