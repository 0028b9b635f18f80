"""Following events committed by other instances on the same store.

On a replica set a change stream on the history collection pushes inserts as
they commit. Where change streams are refused (the embedded store) the
follower tails the collection by sequence number: numbers are taken inside
the writing transaction and commit in order, so reading ``_id > last`` in
order never skips an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pymongo import ASCENDING
from pymongo.errors import OperationFailure, PyMongoError

from service.events.hub import EventHub
from service.store import history, sequence
from service.store.database import Store

log = logging.getLogger("fieldsync.events")


class Follower:
    def __init__(self, store: Store, hub: EventHub, *, poll_interval: float = 0.05) -> None:
        self._store = store
        self._hub = hub
        self._poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self.mode = "starting"

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
        while True:
            try:
                last = await self._tail(last)
            except PyMongoError as error:
                log.warning("event tail failed, retrying: %s", error)
            await asyncio.sleep(self._poll_interval)

    async def _change_stream(self) -> None:
        collection = self._store.db[history.COLLECTION]
        async with await collection.watch([{"$match": {"operationType": "insert"}}]) as stream:
            self.mode = "change-stream"
            async for change in stream:
                self._hub.publish([history.from_document(change["fullDocument"])])

    async def _tail(self, last: int) -> int:
        cursor = (
            self._store.db[history.COLLECTION]
            .find({"_id": {"$gt": history.event_key(last)}})
            .sort("_id", ASCENDING)
            .limit(1000)
        )
        events = [history.from_document(document) for document in await cursor.to_list()]
        if events:
            self._hub.publish(events)
            last = events[-1].id or last
        return last
