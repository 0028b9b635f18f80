"""The upload channel's own budget, apart from the pushes' (``service.api.rate_limit``).

- bytes per device per minute (a token bucket: a PATCH over budget is slowed down,
  not refused, so the phone's tus client just sees a slower link);
- concurrent uploads per device (one more is answered 429 with ``Retry-After``);
- requests per device token (HEAD/POST/PATCH), in their own buckets;
- and pushes first: while a GraphQL request is being answered, upload bytes wait
  (at most ``max_wait`` per piece), so photos never slow an order down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator

from service.api.rate_limit import RateLimiter, retry_after
from service.uploads.protocol import ProtocolError


class TooManyUploads(ProtocolError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(429, message)
        self.retry_after = retry_after


class UploadBudget:
    def __init__(
        self, *, bytes_per_minute: float, burst_bytes: int, concurrent: int, requests_per_minute: float, burst: int
    ) -> None:
        self.bytes = RateLimiter(bytes_per_minute, burst_bytes)
        self.requests = RateLimiter(requests_per_minute, burst)
        self.concurrent = concurrent
        self._active: Counter[str] = Counter()

    def take_request(self, key: str) -> None:
        if wait := self.requests.take(key):
            raise TooManyUploads(f"too many upload requests; retry in {retry_after(wait)} s", retry_after(wait))

    @contextlib.asynccontextmanager
    async def slot(self, device_id: str) -> AsyncIterator[None]:
        """One of the device's concurrent uploads, or TooManyUploads."""
        if self.concurrent and self._active[device_id] >= self.concurrent:
            raise TooManyUploads(f"this device already sends {self.concurrent} uploads at once", 5)
        self._active[device_id] += 1
        try:
            yield
        finally:
            self._active[device_id] -= 1
            if not self._active[device_id]:
                del self._active[device_id]

    async def spend(self, device_id: str, size: int) -> None:
        """Wait until the device may send ``size`` more bytes."""
        cost = min(size, self.bytes.burst)
        while wait := self.bytes.take(f"device:{device_id}", cost):
            await asyncio.sleep(wait)


class PushPriority:
    """Pushes first: upload bytes wait while GraphQL requests are answered in this process."""

    def __init__(self, max_wait: float = 10.0) -> None:
        self.max_wait = max_wait
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.waited_seconds = 0.0  # upload time spent waiting for GraphQL requests (a /metrics gauge)

    @contextlib.asynccontextmanager
    async def request(self) -> AsyncIterator[None]:
        self._running += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._running -= 1
            if not self._running:
                self._idle.set()

    async def wait(self) -> None:
        if not self._idle.is_set():
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.max_wait)
            self.waited_seconds += time.monotonic() - started
