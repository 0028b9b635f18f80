"""A broadcast's fan-out: frames written straight while a follower's connection takes them, queued (in order)
once it does not, the rest of the event loop running between the events of one push, and the broadcasts an
event wakes writing in one burst."""

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


async def until_queued(broadcasts: Broadcasts, count: int) -> None:
    async with asyncio.timeout(5):
        while broadcasts.deliveries.queued < count:
            await asyncio.sleep(0)


async def test_a_follower_that_cannot_take_a_frame_now_gets_the_rest_queued_in_order():
    written: list[int] = []
    taking = iter([True, False, True, True])  # the connection is full for the second frame only

    def write_now(frame: bytes) -> bool:
        if ok := next(taking):
            written.append(number(frame))
        return ok

    broadcasts = Broadcasts(backlog=10)
    async with broadcasts.follow("key", events(4), None, "7", write_now) as frames:
        await until_queued(broadcasts, 3)  # all four offered before the sender takes any: the first queued one waits
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
    broadcasts = Broadcasts(backlog=10)
    async with broadcasts.follow("key", events(4), None, "7", write_now) as frames:
        async for frame in frames:
            if not frame.final:
                await until_queued(broadcasts, 3)  # a slow send: the later frames arrive meanwhile
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
    assert order == ["other", "frame 0", "other", "frame 1", "other", "frame 2"]


async def test_broadcasts_woken_by_one_event_all_render_before_any_writes():
    order: list[str] = []

    def rendered(name: str) -> Callable[[Callable[[], None]], Any]:
        async def results(went_live: Callable[[], None]) -> AsyncIterator[ExecutionResult]:
            async def stream() -> AsyncIterator[ExecutionResult]:
                went_live()
                order.append(f"render {name}")
                yield ExecutionResult(data={"n": 0}, errors=None)

            return stream()

        return results

    def writer(name: str) -> Callable[[bytes], bool]:
        def write_now(frame: bytes) -> bool:
            order.append(f"write {name}")
            return True

        return write_now

    broadcasts = Broadcasts(backlog=10)
    async with (
        broadcasts.follow("a", rendered("a"), None, "1", writer("a")) as a,
        broadcasts.follow("b", rendered("b"), None, "1", writer("b")) as b,
    ):
        await asyncio.gather(anext(a), anext(b))  # their final frames (complete)
    assert order == ["render a", "render b", "write a", "write b"]  # the subscribers get one burst
