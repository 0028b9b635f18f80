"""``GET /export/history.ndjson``: the sync history as newline-delimited JSON, for warehouse jobs.

Same filters as ``syncHistory`` (``repId``, ``deviceId``, ``recordType``,
``recordId``, ``action`` repeatable, ``since``, ``until``), plus ``after``: the
last event id a job wrote, so an hourly job resumes where it stopped. One JSON
object per line, with the GraphQL ``SyncEvent`` field names, oldest first. The
body is streamed from a server-side cursor one batch at a time, so memory does
not grow with the number of events. ADMIN and INTEGRATOR only: a bearer token, or an
ADMIN's console session (the console's export link).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from service.api.credentials import Credential, authenticate
from service.api.rate_limit import retry_after
from service.api.scalars import serialize_datetime
from service.auth.access import AuthError
from service.auth.roles import Role
from service.domain.record_types import RecordType
from service.domain.report import ACTIONS
from service.store import history

if TYPE_CHECKING:
    from service.services import Services

ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR})
PARAMETERS = ("repId", "deviceId", "recordType", "recordId", "action", "since", "until", "after")
BATCH_SIZE = 1000  # events per round trip to the store
CHUNK_BYTES = 64 * 1024  # body bytes handed to the server at a time
MEDIA_TYPE = "application/x-ndjson"
_SPACED_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")  # "+08:00" after form decoding turned "+" into " "


class BadParameters(ValueError):
    """The query string asks for something the export cannot do; the message says what."""


def parse_query(params: QueryParams) -> tuple[history.HistoryFilter, int]:
    """The store filter and the id to resume after, from the query string."""
    unknown = sorted(set(params.keys()) - set(PARAMETERS))
    if unknown:
        raise BadParameters(f"unknown parameter {unknown[0][:40]!r}; known: {', '.join(PARAMETERS)}")
    for name in PARAMETERS:
        if name != "action" and len(params.getlist(name)) > 1:
            raise BadParameters(f"{name} may be given once")
    actions = tuple(params.getlist("action"))
    for action in actions:
        if action not in ACTIONS:
            raise BadParameters(f"unknown action {action[:40]!r}; known: {', '.join(ACTIONS)}")
    record_type = params.get("recordType")
    try:
        parsed_type = RecordType(record_type) if record_type else None
    except ValueError:
        known = ", ".join(t.value for t in RecordType)
        raise BadParameters(f"unknown recordType {str(record_type)[:40]!r}; known: {known}") from None
    after = params.get("after") or "0"
    if not re.fullmatch(r"[0-9]{1,18}", after):
        raise BadParameters("after must be an event id (the id of the last line a previous export wrote)")
    filter = history.HistoryFilter(
        rep_id=params.get("repId") or None,
        device_id=params.get("deviceId") or None,
        record_type=parsed_type,
        record_id=params.get("recordId") or None,
        actions=actions,
        since=_instant(params.get("since"), "since"),
        until=_instant(params.get("until"), "until"),
    )
    return filter, int(after)


def _instant(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    text = _SPACED_OFFSET.sub(r"+\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadParameters(f"{name} is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.utcoffset() is None:
        raise BadParameters(f"{name} needs a UTC offset, e.g. 2026-05-01T09:30:00+08:00 or 2026-05-01T01:30:00Z")
    return parsed.astimezone(UTC)


def event_json(document: dict[str, Any]) -> dict[str, Any]:
    """A stored event under its GraphQL field names; ``id`` is the sequence number, ``at`` UTC with ``Z``."""
    fields = {key: value for key, value in document.items() if key != "_id"}
    return {"id": int(document["_id"]), **fields, "at": serialize_datetime(document["at"])}


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return serialize_datetime(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")


async def ndjson(documents: AsyncIterable[dict[str, Any]], chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """Stored history documents as NDJSON, in chunks of about ``chunk_bytes``; holds one chunk at a time."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode
    lines: list[str] = []
    size = 0
    try:
        async for document in documents:
            line = encode(event_json(document))
            lines.append(line)
            size += len(line) + 1
            if size >= chunk_bytes:
                yield ("\n".join(lines) + "\n").encode()
                lines, size = [], 0
        if lines:
            yield ("\n".join(lines) + "\n").encode()
    finally:
        close = getattr(documents, "close", None)
        if close is not None:  # the cursor, when the client went away early
            await close()


def _error(status: int, message: str, **headers: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def export_history(request: Request) -> Response:
    services: Services = request.app.state.fieldsync["services"]
    credential = Credential.of_request(request)
    if wait := services.limiter.take(credential.budget(request.client.host if request.client else None)):
        seconds = retry_after(wait)
        return _error(429, f"too many requests; retry in {seconds} s", **{"Retry-After": str(seconds)})
    try:
        principal = await authenticate(services, credential, download=True)
    except AuthError as error:  # its message never holds the token
        return _error(401, str(error), **{"WWW-Authenticate": "Bearer"})
    if principal.role not in ROLES:
        return _error(403, f"{principal.role.value} may not export history (ADMIN or INTEGRATOR only)")
    try:
        filter, after = parse_query(request.query_params)
    except BadParameters as error:
        return _error(400, str(error))
    cursor = history.stream(services.store, filter, BATCH_SIZE, after_id=after)
    return StreamingResponse(ndjson(cursor), media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store"})
