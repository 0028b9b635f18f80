"""Error codes: every error a client of ``/graphql`` sees carries one, from ``CODES``.

Errors the service raises on purpose (``Unauthenticated``, ``BadRequest``, ...) carry their
code and a message written for the client. Anything else is masked before it leaves the
process: a store that cannot serve now becomes ``UNAVAILABLE`` (HTTP 503, ``Retry-After``),
every other failure ``INTERNAL`` with a reference that is also in the server's log. No driver
or store text, address or stack trace reaches a client. ``docs/errors.md`` is generated from
``CODES`` by ``markdown()`` (a test compares them).

To make a new failure retryable, raise ``service.store.unavailable.StoreUnavailable``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from starlette.responses import JSONResponse, Response
from strawberry.extensions import SchemaExtension

from service.api.rate_limit import retry_after
from service.store.unavailable import StoreUnavailable, as_unavailable

log = logging.getLogger("fieldsync.errors")


@dataclass(frozen=True)
class ErrorCode:
    name: str
    status: int  # HTTP status of a /graphql response turned away with this code
    meaning: str
    device: str  # what a device's sync queue should do


CODES = {
    code.name: code
    for code in (
        ErrorCode(
            "UNAUTHENTICATED",
            200,
            "No token, or a token that is unknown, revoked or expired (the message says which).",
            "Stop syncing; keep the queue. Ask the rep to sign in again (or re-register the device) for a new token.",
        ),
        ErrorCode(
            "FORBIDDEN",
            200,
            "The token is valid but its role or device may not do this.",
            "Do not retry. A device token acts only for its own device; a bug in the app, not in the data.",
        ),
        ErrorCode(
            "NOT_FOUND",
            200,
            "The id does not exist or is not the caller's (the same answer for both).",
            "Do not retry; drop the reference (e.g. a conflict already resolved elsewhere).",
        ),
        ErrorCode(
            "BAD_REQUEST",
            200,
            "The request is malformed or a value is out of range; the message names the field and the limit. "
            "Also HTTP 400 when the body is not a GraphQL request at all.",
            "Do not retry it unchanged: it will fail the same way. Report it; the rest of the queue is not affected "
            "unless this was a push.",
        ),
        ErrorCode(
            "QUERY_TOO_COMPLEX",
            200,
            "The operation selects more fields than allowed (fragments expanded).",
            "Do not retry; ask for fewer fields.",
        ),
        ErrorCode(
            "PAYLOAD_TOO_LARGE",
            413,
            "The request body is larger than FIELDSYNC_MAX_BODY_BYTES.",
            "Split the push into smaller batches and send them in order.",
        ),
        ErrorCode(
            "METHOD_NOT_ALLOWED",
            405,
            "Only POST carries queries and mutations (GET serves GraphiQL); subscriptions go over WebSocket.",
            "Do not retry; fix the client.",
        ),
        ErrorCode(
            "RATE_LIMITED",
            429,
            "The token, device or address spent its request budget. HTTP 429 with Retry-After; "
            "extensions.retryAfter holds the same seconds.",
            "Wait Retry-After seconds, then send the same request again. Nothing of it was applied.",
        ),
        ErrorCode(
            "UNAVAILABLE",
            503,
            "The store cannot serve now (unreachable, busy, disk full, restarting). HTTP 503 with Retry-After; "
            "extensions.retryAfter holds the same seconds and extensions.reason one word of: "
            "unreachable, timed out, disk full, busy, not writable.",
            "Keep the queue and send the same push again after Retry-After (then back off, e.g. doubling up to "
            "5 minutes). Pushes are idempotent by offlineId: a push cut off by this applied each change whole or "
            "not at all.",
        ),
        ErrorCode(
            "INTERNAL",
            500,
            "An unexpected failure; extensions.reference matches a line in the server's log.",
            "Retry later with backoff (a few times at most), then report the reference to support.",
        ),
        ErrorCode(
            "SUBSCRIPTION_CLOSED",
            200,
            "WebSocket only: the server ended a subscription (token revoked, device revoked, the feed stopped); "
            "the message says why.",
            "Dashboards: resubscribe unless the message says the token or device was revoked.",
        ),
    )
}

GENERIC_INTERNAL = "internal error; report reference {reference} if it persists"
GENERIC_UNAVAILABLE = "the service cannot reach its store right now ({reason}); retry in {seconds} s"


def coded_error(message: str, code: str, **extensions: Any) -> GraphQLError:
    assert code in CODES, code
    return GraphQLError(message, extensions={"code": code, **extensions})


def unavailable_error(failure: StoreUnavailable) -> GraphQLError:
    seconds = retry_after(failure.retry_after)
    return coded_error(
        GENERIC_UNAVAILABLE.format(reason=failure.reason, seconds=seconds),
        "UNAVAILABLE",
        reason=failure.reason,
        retryAfter=seconds,
    )


def internal_error(error: BaseException, where: str) -> GraphQLError:
    """Log ``error`` with a fresh reference; the masked error the client sees."""
    reference = secrets.token_hex(6)
    log.error("internal error %s in %s", reference, where, exc_info=error)
    return coded_error(GENERIC_INTERNAL.format(reference=reference), "INTERNAL", reference=reference)


def client_error(error: GraphQLError, where: str = "an operation") -> GraphQLError:
    """``error`` as a client may see it: with a code from ``CODES``, and masked unless the service meant it."""
    if (error.extensions or {}).get("code") in CODES:
        return error
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        # a syntax, validation or limit error about the request itself: its message is about the query
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            path=error.path,
            extensions={**(error.extensions or {}), "code": "BAD_REQUEST"},
        )
    if (failure := as_unavailable(original)) is not None:
        log.warning("store %s during %s (%s)", failure.reason, where, type(failure.__cause__ or original).__name__)
        return _located(unavailable_error(failure), error)
    if error.path is None and error.nodes and isinstance(original, ValueError | TypeError):
        # an argument or variable that failed its scalar's parsing (the message is ours, about the input)
        return GraphQLError(error.message, nodes=error.nodes, extensions={"code": "BAD_REQUEST"})
    return _located(internal_error(original, where), error)


def _located(masked: GraphQLError, error: GraphQLError) -> GraphQLError:
    return GraphQLError(masked.message, nodes=error.nodes, path=error.path, extensions=masked.extensions)


def http_status(errors: list[GraphQLError], has_data: bool) -> tuple[int, dict[str, str]]:
    """The HTTP status (and headers) of a GraphQL response carrying ``errors``."""
    codes = [(error.extensions or {}).get("code") for error in errors]
    if "UNAVAILABLE" in codes:
        wait = max(int((e.extensions or {}).get("retryAfter", 1)) for e in errors if e.extensions)
        return 503, {"Retry-After": str(wait)}
    if "INTERNAL" in codes and not has_data:
        return 500, {}
    return 200, {}


def error_response(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> Response:
    """An HTTP error on /graphql, shaped as a GraphQL response."""
    extensions = {"retryAfter": int(headers["Retry-After"])} if headers and "Retry-After" in headers else {}
    return graphql_error_response(status, coded_error(message, code, **extensions), headers)


def graphql_error_response(status: int, error: GraphQLError, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"errors": [error.formatted]}, status, headers=headers)


def failure_response(error: BaseException, where: str) -> Response:
    """The response for an exception that escaped a /graphql request: 503 or 500, masked."""
    failure = as_unavailable(error)
    if failure is not None:
        log.warning("store %s during %s (%s)", failure.reason, where, type(failure.__cause__ or error).__name__)
        masked = unavailable_error(failure)
        return graphql_error_response(503, masked, {"Retry-After": str((masked.extensions or {})["retryAfter"])})
    return graphql_error_response(500, internal_error(error, where))


class ErrorCodes(SchemaExtension):
    """Gives every error of an operation (or of each subscription event) its code, masking the unexpected."""

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:
            self._code(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._streamed = True
        self._code(result)
        yield None

    def _code(self, result: Any) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            where = self.execution_context.operation_name or "an operation"
            result.errors = [client_error(error, where) for error in errors]


def markdown() -> str:
    """The table of codes in docs/errors.md."""
    rows = ["| code | HTTP | what it means | what a device should do |", "|---|---|---|---|"]
    rows += [f"| `{c.name}` | {c.status} | {c.meaning} | {c.device} |" for c in CODES.values()]
    return "\n".join(rows) + "\n"
