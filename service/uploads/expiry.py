"""Abandoned uploads expire: a background sweep deletes unfinished uploads past ``Upload-Expires``
(their parts included), at start-up and then every ``interval`` seconds. Every instance may
sweep; deleting twice is harmless."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service.uploads.channel import UploadChannel

log = logging.getLogger("fieldsync.uploads")


class ExpirySweeper:
    def __init__(self, channel: UploadChannel, interval: float = 600) -> None:
        self._channel = channel
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="upload-expiry")

    async def stop(self) -> None:
        """Let a sweep under way finish (a cancelled store call would leave its connection behind)."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if count := await self._channel.expire():
                    log.info("deleted %d expired uploads", count)
            except Exception:
                log.exception("expiring uploads failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
