"""Following events committed by other instances on the same store.

On a replica set a change stream on the history collection pushes inserts as
they commit. Where change streams are refused (the embedded store) the
follower looks at the head of the global sequence (one document, read by ``_id``)
and reads events only when it moved; it looks every 50 ms, or, on the store this
service started, when the store says a commit moved the head, and to where (``moved``:
no read of the head then; and a look every 5 s besides). Numbers are taken inside the writing
transaction and commit in order: once the head reads ``h``, every event up to
``h`` is committed, so reading ``seq > last`` in order never skips one. An idle
follower therefore costs one point read per poll, whatever the history's size; while
nobody subscribes it reads no events at all (a subscriber is shown what commits after
the head read before it came), and it never reads back the events of this process's
own commits (published when they committed) that come next in the sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pymongo.errors import OperationFailure, PyMongoError

from service.events.hub import EventHub
from service.store import history, sequence
from service.store.database import Store

log = logging.getLogger("fieldsync.events")


class Follower:
    """``told``: the store says where the head moved (``moved``, from the embedded store's signal,
    ``EmbeddedStore.listen``); the follower then looks when it moved and otherwise only every
    ``poll_interval``."""

    def __init__(self, store: Store, hub: EventHub, *, poll_interval: float = 0.05, told: bool = False) -> None:
        self._store = store
        self._hub = hub
        self._poll_interval = poll_interval
        self._moved = asyncio.Event() if told else None
        self._told_head = 0
        self._task: asyncio.Task[None] | None = None
        self.mode = "starting"

    def moved(self, head: int) -> None:
        """The store says a commit moved the head of the sequence to ``head``."""
        assert self._moved is not None, "a follower not told of commits polls"
        if head > self._told_head:
            self._told_head = head
            self._moved.set()

    async def start(self) -> None:
        last = await sequence.current(self._store)
        self._task = asyncio.create_task(self._run(last), name="event-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, last: int) -> None:
        try:
            await self._change_stream()
        except OperationFailure as error:
            log.info("change streams unavailable (%s); tailing history by sequence", error.code)
        self.mode = "tail"
        head = None
        while True:
            try:
                last = await self._tail(last, head)
            except PyMongoError as error:
                log.warning("event tail failed, retrying: %s", error)
            head = await self._next_look()

    async def _next_look(self) -> int | None:
        """Wait for the next look: the head when the store said where it moved, None when it must be read."""
        if self._moved is None:
            await asyncio.sleep(self._poll_interval)
            return None
        try:
            await asyncio.wait_for(self._moved.wait(), self._poll_interval)
        except TimeoutError:
            return None
        self._moved.clear()
        return self._told_head

    async def _change_stream(self) -> None:
        collection = self._store.db[history.COLLECTION]
        async with await collection.watch([{"$match": {"operationType": "insert"}}]) as stream:
            self.mode = "change-stream"
            async for change in stream:
                self._hub.publish([history.from_document(change["fullDocument"])])

    async def _tail(self, last: int, head: int | None, batch: int = 1000) -> int:
        if head is None:
            head = await sequence.current(self._store)
        if not self._hub.subscriber_count:
            return self._hub.published_through(head)  # nobody follows: what committed is passed by, unread
        last = self._hub.published_through(last)  # this process's own commits are published already
        while last < head:
            events = await history.after(self._store, last, batch)
            if events:
                self._hub.publish(events)
                last = events[-1].id or last
            if len(events) < batch:
                return max(last, head)  # every number up to the head is committed: none is left behind
        return last
