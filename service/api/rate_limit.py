"""Request budgets: one token bucket per key (token hash, device, client address), in memory, per process.

A bucket holds up to ``burst`` requests and refills at ``per_minute / 60`` requests a
second. Each instance of the service keeps its own buckets, so N instances behind a
load balancer allow up to N times the configured rate in total.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from service.auth.tokens import token_hash


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = per_minute / 60.0  # requests per second
        self.burst = max(burst, 1)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, cost: float = 1) -> float:
        """Spend ``cost`` (one request) of ``key``'s budget: 0 when allowed, else the seconds until it is available."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(key)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self._max_keys:  # forgetting a key refills it: only ever laxer
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            self._buckets.move_to_end(key)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(seconds: float) -> int:
    """The ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


def budget_key(token: str | None, client: str | None) -> str:
    """The budget a request spends first: its token's, or without a token its client address's."""
    return f"token:{token_hash(token)}" if token else f"client:{client or 'unknown'}"
