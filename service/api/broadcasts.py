"""One execution of a subscription for every WebSocket that asked for exactly the same thing.

A wall of dashboards opens the same subscription (same document, variables and token) many
times over. Each such group shares one ``Broadcast``: one execution of the operation (one
subscription in the event hub, one GraphQL execution and one JSON encoding per event),
whose frames reach every follower from one loop per event (the rest of the process runs
between the events of a push, and the broadcasts one event wakes all render it before any
writes: the subscribers get it in one burst). A follower whose connection can take a
``next`` frame now gets it written straight onto its transport (``service.api.wire``: no
task wake-up, no ASGI send, no compression); otherwise the frame is queued to it. A
follower never awaits another: its sender drains its own queue, and one more than
``backlog`` frames behind is dropped (its ``on_overflow`` closes its connection, 1013).
A follower writes straight only with nothing queued or being sent, so its frames stay in
order. The broadcast belongs to the registry, not to the connection that started it: it
runs while anyone follows it and stops with its last follower.

Callers share a broadcast when they ask the same thing with the same audience (role, rep
scope, device: ``Principal.audience``), whatever their tokens: a wall of managers' screens is
one execution. What it shows depends on that audience, not on any one token, so a token's
revocation ends its own followers only (``token_revoked``: they are told why, as the hub tells
a subscription it ends), and the others follow on. A device's revocation ends its audience's
broadcasts in the hub, as before; each connection still checks its own token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from strawberry.types.execution import ExecutionResult, PreExecutionError

from service.api.wire import text_frame

log = logging.getLogger("fieldsync.api")
TOKEN_REVOKED = "token revoked"  # why a revoked token's followers end

# ``schema.stream`` for the operation (ExecutionResults, a PreExecutionError first), given what to call once it is live
Results = Callable[[Callable[[], None]], Awaitable[AsyncIterator[Any]]]
# writes a framed message onto the follower's connection if it can take it now; False: it cannot (queue it)
WriteNow = Callable[[bytes], bool]


@dataclass(frozen=True)
class Frame:
    """A graphql-transport-ws message rendered once for every follower; only the operation id differs."""

    type: str  # next, error or complete
    payload: str = ""  # JSON text
    _framed: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def text(self, operation_id: str) -> str:
        start = '{"id":' + json.dumps(operation_id) + ',"type":"' + self.type + '"'
        return start + ("}" if self.type == "complete" else ',"payload":' + self.payload + "}")

    def framed(self, operation_id: str) -> bytes:
        """The WebSocket frame of ``text``, built once per operation id (followers mostly share theirs)."""
        if (frame := self._framed.get(operation_id)) is None:
            frame = self._framed[operation_id] = text_frame(self.text(operation_id).encode())
        return frame

    @property
    def final(self) -> bool:
        return self.type != "next"


COMPLETE = Frame("complete")


@dataclass
class Deliveries:
    """Frames handed to followers so far: written straight onto their connection, or queued to their sender."""

    direct: int = 0
    queued: int = 0


@dataclass(eq=False)
class Follower:
    backlog: int
    on_overflow: Callable[[], None] | None
    operation_id: str
    write_now: WriteNow | None  # None: every frame is queued
    deliveries: Deliveries
    token_id: str | None = None  # the token it follows with
    queue: asyncio.Queue[Frame] = field(init=False)
    dropped: bool = False
    ended: bool = False  # its last frames are offered: it takes no more
    sending: bool = False  # its sender holds a frame it took from the queue

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.backlog + 1)  # + room for the final frame

    def offer(self, frame: Frame) -> None:
        if self.dropped or self.ended:
            return
        if (
            not frame.final
            and self.write_now is not None
            and not self.sending
            and self.queue.empty()
            and self.write_now(frame.framed(self.operation_id))
        ):
            self.deliveries.direct += 1
            return
        if frame.final or self.queue.qsize() < self.backlog:
            self.queue.put_nowait(frame)
            self.deliveries.queued += 1
            return
        self.dropped = True
        log.info("dropping a subscriber too slow to take its events (%d waiting)", self.queue.qsize())
        if self.on_overflow is not None:
            self.on_overflow()

    def end(self, reason: str) -> None:
        """This follower alone stops, told why (a ``next`` with a SUBSCRIPTION_CLOSED error, then complete)."""
        error = {"message": reason, "extensions": {"code": "SUBSCRIPTION_CLOSED"}}
        self.offer(Frame("next", json.dumps({"data": None, "errors": [error]})))
        self.offer(COMPLETE)
        self.ended = True

    async def frames(self) -> AsyncIterator[Frame]:
        while not self.dropped:
            frame = await self.queue.get()
            self.sending = True
            yield frame
            self.sending = False
            if frame.final:
                return


class Broadcast:
    def __init__(self, results: Results) -> None:
        self.followers: set[Follower] = set()
        self.ended = False
        self.live = False  # the operation holds its subscription: events from now on reach the followers
        self._task = asyncio.create_task(self._run(results), name="broadcast")

    async def _run(self, results: Results) -> None:
        try:
            async with aclosing(await results(self._went_live)) as stream:  # type: ignore[type-var]
                first = True
                async for result in stream:
                    if first and isinstance(result, PreExecutionError):
                        self._send(Frame("error", json.dumps([e.formatted for e in result.errors or []])))
                        return
                    first = False
                    frame = Frame("next", json.dumps(_payload(result)))
                    # The rest of the loop runs between the fan-outs of a push's events (they come at once), and
                    # broadcasts woken by the same event all render before any writes: subscribers get one burst.
                    await asyncio.sleep(0)
                    self._send(frame)
            self._send(COMPLETE)
        finally:
            self.ended = True

    def _went_live(self) -> None:
        self.live = True

    def _send(self, frame: Frame) -> None:
        for follower in list(self.followers):
            follower.offer(frame)
        if frame.final:
            self.ended = True

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _payload(result: ExecutionResult) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


class Broadcasts:
    """The live broadcasts of a process, by what their followers asked for."""

    def __init__(self, backlog: int) -> None:
        self._backlog = backlog
        self._live: dict[Hashable, Broadcast] = {}
        self.deliveries = Deliveries()

    @property
    def follower_count(self) -> int:
        """Followers an event published now reaches (their broadcast is live, they were not dropped or ended)."""
        return sum(1 for b in self._live.values() if b.live for f in b.followers if not (f.dropped or f.ended))

    @property
    def broadcast_count(self) -> int:
        return len(self._live)

    def token_revoked(self, token_id: str) -> None:
        """The followers holding a revoked token end, saying why; the broadcasts go on for the others."""
        for broadcast in self._live.values():
            for follower in list(broadcast.followers):
                if follower.token_id == token_id:
                    follower.end(TOKEN_REVOKED)

    @asynccontextmanager
    async def follow(
        self,
        key: Hashable,
        results: Results,
        on_overflow: Callable[[], None] | None,
        operation_id: str,
        write_now: WriteNow | None,
        token_id: str | None = None,
    ) -> AsyncIterator[AsyncIterator[Frame]]:
        """Join the broadcast for ``key`` (started with ``results()`` when there is none) for as long as needed."""
        broadcast = self._live.get(key)
        if broadcast is None or broadcast.ended:
            broadcast = self._live[key] = Broadcast(results)
        follower = Follower(self._backlog, on_overflow, operation_id, write_now, self.deliveries, token_id)
        broadcast.followers.add(follower)
        try:
            yield follower.frames()
        finally:
            broadcast.followers.discard(follower)
            if not broadcast.followers:
                if self._live.get(key) is broadcast:
                    del self._live[key]
                await broadcast.stop()
