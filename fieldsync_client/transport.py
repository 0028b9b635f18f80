"""GraphQL over HTTP with the retry loop of docs/errors.md.

Sending again is always safe for a push: the server decides each offlineId once. So every
answer that says "not served, try later" (HTTP 429 or 503 with ``Retry-After``, INTERNAL, or
no answer at all: connection refused, reset, timed out) is retried with the same request,
waiting ``Retry-After`` when the server names it and otherwise backing off (doubling, with
jitter, capped). Anything else is the caller's to handle.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx

RETRYABLE_CODES = {"RATE_LIMITED", "UNAVAILABLE", "INTERNAL"}


class GraphQLError(Exception):
    """The server answered with errors that sending the same request again cannot fix."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        self.code = (errors[0].get("extensions") or {}).get("code") if errors else None
        super().__init__("; ".join(f"{e.get('extensions', {}).get('code')}: {e.get('message')}" for e in errors))


class Offline(Exception):
    """The server could not be reached (or kept saying "later") within the attempts allowed."""


class Transport:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        http: httpx.Client | None = None,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/graphql"
        self.token = token
        self.http = http or httpx.Client(timeout=timeout)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.retries = 0  # requests sent again, over the transport's life
        self.waits: list[float] = []  # every pause taken before a retry, in seconds

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The operation's ``data``; retries what may be retried, raises the rest."""
        for attempt in range(self.max_attempts):
            if attempt:
                self.retries += 1
            try:
                response = self.http.post(
                    self.endpoint,
                    json={"query": query, "variables": variables or {}},
                    headers={"Authorization": f"Bearer {self.token}"},
                )
            except httpx.TransportError:
                self.pause(attempt, None)
                continue
            body = _json(response)
            errors = body.get("errors") if body else None
            if response.status_code in (429, 503) or (errors and _retryable(errors)) or body is None:
                self.pause(attempt, retry_after(response, errors))
                continue
            if errors:
                raise GraphQLError(errors)
            return body["data"]
        raise Offline(f"{self.endpoint} did not serve the request in {self.max_attempts} attempts")

    def close(self) -> None:
        self.http.close()

    def pause(self, attempt: int, retry_after: float | None) -> None:
        """Wait before sending again: ``Retry-After`` when named, else backing off (doubling, jittered, capped)."""
        backoff = min(self.backoff_cap, self.backoff_base * 2**attempt) * (0.5 + self.rng.random() / 2)
        wait = max(retry_after, backoff) if retry_after is not None else backoff
        self.waits.append(wait)
        self.sleep(wait)


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _retryable(errors: list[dict[str, Any]]) -> bool:
    return any((e.get("extensions") or {}).get("code") in RETRYABLE_CODES for e in errors)


def retry_after(response: httpx.Response, errors: list[dict[str, Any]] | None) -> float | None:
    header = response.headers.get("Retry-After")
    if header is not None:
        try:
            return float(header)
        except ValueError:
            pass
    for error in errors or []:
        seconds = (error.get("extensions") or {}).get("retryAfter")
        if isinstance(seconds, int | float):
            return float(seconds)
    return None
