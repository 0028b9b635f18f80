"""Connection pages: ``PageInfo``, and cursors of lists ordered by (instant, id)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import strawberry

from service.api.context import BadRequest


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_time_cursor(at: datetime, item_id: str) -> str:
    payload = json.dumps([at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(payload).decode()


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, item_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(item_id)
    except (ValueError, TypeError):
        raise BadRequest("after is not a cursor this server gave out") from None
