"""A broadcast's fan-out: frames written straight while a follower's connection takes them, queued (in order)
once it does not, and the rest of the event loop running between the events of one push."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from strawberry.types.execution import ExecutionResult

from service.api.broadcasts import Broadcasts


def events(n: int) -> Callable[[Callable[[], None]], Any]:
    """A subscription's results: n events at once, as a push's worth arrives."""

    async def results(went_live: Callable[[], None]) -> AsyncIterator[ExecutionResult]:
        async def stream() -> AsyncIterator[ExecutionResult]:
            went_live()
            for i in range(n):
                yield ExecutionResult(data={"n": i}, errors=None)

        return stream()

    return results


def number(text: str | bytes) -> int:
    if isinstance(text, bytes):
        text = text[2:]  # a frame under 126 bytes: its 2-byte header
    return json.loads(text)["payload"]["data"]["n"]


async def test_a_follower_that_cannot_take_a_frame_now_gets_the_rest_queued_in_order():
    written: list[int] = []
    taking = iter([True, False, True, True])  # the connection is full for the second frame only

    def write_now(frame: bytes) -> bool:
        if ok := next(taking):
            written.append(number(frame))
        return ok

    async with Broadcasts(backlog=10).follow("key", events(4), None, "7", write_now) as frames:
        await asyncio.sleep(0.05)  # all four offered before the sender takes any: the first queued one waits
        queued = [number(frame.text("7")) async for frame in frames if not frame.final]
    assert (written, queued) == ([0], [1, 2, 3])


async def test_nothing_is_written_past_a_frame_its_sender_holds():
    written: list[int] = []
    taking = iter([True, False, True, True])

    def write_now(frame: bytes) -> bool:
        if ok := next(taking):
            written.append(number(frame))
        return ok

    sent: list[int] = []
    async with Broadcasts(backlog=10).follow("key", events(4), None, "7", write_now) as frames:
        async for frame in frames:
            if not frame.final:
                await asyncio.sleep(0.01)  # a slow send: the later frames arrive meanwhile
                sent.append(number(frame.text("7")))
    assert (written, sent) == ([0], [1, 2, 3])


async def test_other_work_runs_between_the_fan_outs_of_one_push():
    order: list[str] = []

    def write_now(frame: bytes) -> bool:
        order.append(f"frame {number(frame)}")
        return True

    async def other_work() -> None:
        for _ in range(3):
            order.append("other")
            await asyncio.sleep(0)

    async with Broadcasts(backlog=10).follow("key", events(3), None, "1", write_now) as frames:
        await asyncio.gather(other_work(), anext(frames))  # the final frame (complete) is queued
    assert order == ["frame 0", "other", "frame 1", "other", "frame 2", "other"]
