"""Periodic token re-checks of open WebSockets, shared by the connections that hold the same credential.

A wall of dashboards opens hundreds of connections with one token; each re-checks it every
``ws_reauth_seconds``, and every check reads the store. Re-checks of one credential that
start within ``share_seconds`` (the interval / ``CHECKS_PER_INTERVAL``) of each other share
one check (in flight or just finished) and its outcome, so a credential costs at most one
check per ``share_seconds`` whatever the number of its connections, and a revocation is
still seen within ``ws_reauth_seconds`` plus ``share_seconds``. A connection that stops
waiting (its own timeout) never cancels the check for the others. A subscribe still checks
afresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.api.credentials import Credential
from service.auth.roles import Principal

Check = Callable[[Credential], Awaitable[Principal]]
CHECKS_PER_INTERVAL = 30  # a credential's connections together check it at most this often per re-check interval
SWEEP_ABOVE = 256  # credentials remembered past which finished checks older than the sharing window are let go


@dataclass(frozen=True)
class _Shared:
    started: float
    check: asyncio.Future[Principal]


class SharedRechecks:
    def __init__(self, check: Check, share_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._check = check
        self._share_seconds = share_seconds
        self._clock = clock
        self._recent: dict[Credential, _Shared] = {}

    async def check(self, credential: Credential) -> Principal:
        """The credential's principal, from a check started at most ``share_seconds`` ago (AuthError as it raised)."""
        now = self._clock()
        shared = self._recent.get(credential)
        if shared is None or now - shared.started > self._share_seconds:
            if len(self._recent) >= SWEEP_ABOVE:
                self._sweep(now)
            future = asyncio.ensure_future(self._check(credential))
            future.add_done_callback(_retrieve)
            shared = self._recent[credential] = _Shared(now, future)
        return await asyncio.shield(shared.check)

    def _sweep(self, now: float) -> None:
        for credential, shared in list(self._recent.items()):
            if shared.check.done() and now - shared.started > self._share_seconds:
                del self._recent[credential]


def _retrieve(future: asyncio.Future[Principal]) -> None:
    """Every connection that waited may have given up: the outcome is retrieved here, never reported as lost."""
    if not future.cancelled():
        future.exception()
