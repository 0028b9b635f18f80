"""A patchy mobile network, as an httpx transport: for simulations and tests of the retry loop.

Deterministic by its ``random.Random``. Each request may be
- lost on the way (the server never sees it: ``ConnectError``),
- served but its answer lost (the server decided it; the phone sees ``ReadTimeout``),
- sent twice (the first answer is thrown away, as when an app retries too eagerly).
"""

from __future__ import annotations

import random
from collections import Counter

import httpx


class FlakyNetwork(httpx.BaseTransport):
    def __init__(
        self,
        rng: random.Random,
        *,
        lose_request: float = 0.0,
        lose_answer: float = 0.0,
        send_twice: float = 0.0,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.rng = rng
        self.lose_request = lose_request
        self.lose_answer = lose_answer
        self.send_twice = send_twice
        self.inner = inner or httpx.HTTPTransport()
        self.faults: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.lose_request:
            self.faults["lost requests"] += 1
            raise httpx.ConnectError("simulated: no signal", request=request)
        roll -= self.lose_request
        if roll < self.send_twice:
            self.faults["duplicate sends"] += 1
            self._served(request).close()
        roll -= self.send_twice
        response = self._served(request)
        if roll < self.lose_answer:
            self.faults["lost answers"] += 1
            response.close()
            raise httpx.ReadTimeout("simulated: the answer never arrived", request=request)
        return response

    def _served(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        return response

    def close(self) -> None:
        self.inner.close()
