"""service.store.pymongo_io: a store command's reply is awaited in the caller's task (PyMongo starts two
tasks per reply), and what those tasks did still happens: a wedged store fails an operation at its
deadline, and a pool interrupted under a waiting read fails it instead of leaving it waiting."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pymongo
import pytest
from pymongo import AsyncMongoClient, monitoring, pool_shared
from pymongo.asynchronous import pool
from pymongo.errors import AutoReconnect, PyMongoError

from service.store import held_connection, pymongo_io
from service.store.database import Store, connect
from service.store.embedded import EmbeddedStore, start_embedded_store

UPSTREAM_TASKS = {"PyMongoProtocol.read", "_poll_cancellation"}  # what PyMongo starts for each reply


@pytest.fixture(scope="module")
def embedded_store() -> Iterator[EmbeddedStore]:
    """A store of this module's own: the tests stop its process (SIGSTOP) to wedge it."""
    started = start_embedded_store(None)
    yield started
    started.stop()


@contextmanager
def wedged(embedded_store: EmbeddedStore) -> Iterator[None]:
    os.kill(embedded_store.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(embedded_store.process.pid, signal.SIGCONT)


class Started(monitoring.CommandListener):
    """Sets ``find`` when a find command has been sent."""

    def __init__(self) -> None:
        self.find = asyncio.Event()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.find.set()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def store_on(embedded_store: EmbeddedStore, **options: Any) -> Store:
    store = connect(embedded_store.uri, "pymongo_io", embedded=True, **options)
    await store.db.things.update_one({"_id": "a"}, {"$set": {"n": 1}}, upsert=True)
    return store


@contextmanager
def counting_tasks(counts: dict[str, int]) -> Iterator[None]:
    """Counts the tasks started in the running loop, by their coroutine's name."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        name = getattr(coro, "__qualname__", "")
        counts[name] = counts.get(name, 0) + 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        yield
    finally:
        loop.set_task_factory(previous)


@pytest.fixture
async def store(embedded_store: EmbeddedStore) -> AsyncIterator[Store]:
    store = await store_on(embedded_store, timeout=5)
    yield store
    await store.close()


async def test_a_command_reads_its_reply_without_starting_a_task(store: Store):
    counts: dict[str, int] = {}
    with counting_tasks(counts):
        for _ in range(10):
            assert await store.db.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
            await store.db.things.update_one({"_id": "a"}, {"$set": {"n": 1}})
    assert not UPSTREAM_TASKS & counts.keys(), counts


async def test_upstream_starts_two_tasks_per_reply(store: Store, monkeypatch: pytest.MonkeyPatch):
    """What the patch removes, with PyMongo's own functions put back for this test."""
    assert pymongo.__version__ == pymongo_io.PINNED_VERSION  # else re-check the patch against the new version
    monkeypatch.setattr(pool, "async_receive_message", pymongo_io._ORIGINALS["receive"])
    monkeypatch.setattr(pool, "async_sendall", pymongo_io._ORIGINALS["send"])
    counts: dict[str, int] = {}
    with counting_tasks(counts):
        for _ in range(10):
            await store.db.things.find_one({"_id": "a"})
    assert counts == {"PyMongoProtocol.read": 10, "_poll_cancellation": 10}


async def test_a_wedged_store_fails_an_operation_at_its_deadline(embedded_store: EmbeddedStore):
    store = await store_on(embedded_store, timeout=0.5)  # the service's timeoutMS
    try:
        with wedged(embedded_store):
            started = time.monotonic()
            with pytest.raises(PyMongoError) as failed:
                await store.db.things.find_one({"_id": "a"})
            assert failed.value.timeout
            assert 0.4 < time.monotonic() - started < 3
            with pymongo.timeout(0.2), pytest.raises(PyMongoError) as failed:  # a shorter deadline of its own
                await store.db.things.find_one({"_id": "a"})
            assert failed.value.timeout
        assert await store.db.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
    finally:
        await store.close()


async def test_a_command_on_a_transactions_held_connection_fails_at_the_same_deadline(
    embedded_store: EmbeddedStore,
):
    store = await store_on(embedded_store, timeout=0.5)
    try:
        async with store.client.start_session() as session:
            await session.start_transaction()
            await held_connection.hold(store.client, session)
            with wedged(embedded_store):
                started = time.monotonic()
                with pytest.raises(PyMongoError) as failed:
                    await held_connection.find(store.db.things, {"_id": "a"}, session)
                assert failed.value.timeout
                assert 0.4 < time.monotonic() - started < 3
        assert await store.db.things.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
    finally:
        await store.close()


@pytest.mark.parametrize("io", ["patched", "upstream"])
async def test_an_interrupted_pool_fails_a_read_waiting_on_it(
    embedded_store: EmbeddedStore, io: str, monkeypatch: pytest.MonkeyPatch
):
    """A pool cleared with interruptInUseConnections (as when its server's heartbeat fails) cancels the
    contexts of its connections in use: a read with no deadline, on a store that never answers, fails
    (upstream too, where a task watching the context saw it within 0.5 s)."""
    assert pymongo_io.apply()
    if io == "upstream":
        monkeypatch.setattr(pool, "async_receive_message", pymongo_io._ORIGINALS["receive"])
        monkeypatch.setattr(pool, "async_sendall", pymongo_io._ORIGINALS["send"])
        monkeypatch.setattr(pool, "AsyncConnection", pymongo_io._ORIGINALS["connection"])
    started = Started()
    client: AsyncMongoClient = AsyncMongoClient(embedded_store.uri, retryReads=False, event_listeners=[started])
    try:
        await client.db.things.find_one({"_id": "a"})  # connected
        started.find.clear()
        with wedged(embedded_store):
            read = asyncio.create_task(client.db.things.find_one({"_id": "a"}))
            await started.find.wait()
            [server] = (await client._get_topology())._servers.values()
            await server.pool.reset(interrupt_connections=True)
            with pytest.raises(AutoReconnect, match="operation cancelled"):
                await asyncio.wait_for(read, 5)
    finally:
        await client.close()


@pytest.mark.parametrize("io", ["patched", "upstream"])
async def test_reads_cancelled_while_their_connection_opens_leave_no_socket_open(
    embedded_store: EmbeddedStore, io: str, monkeypatch: pytest.MonkeyPatch
):
    """Tasks cancelled while PyMongo opens the connections they asked for: upstream leaves those sockets
    to the garbage collector, still open (a ResourceWarning); patched, each is closed once its connect ends."""
    assert pymongo_io.apply()
    if io == "upstream":
        monkeypatch.setattr(pool_shared, "_async_create_connection", pymongo_io._ORIGINALS["connect"])
    loop = asyncio.get_running_loop()
    sock_connect = loop.sock_connect

    async def slow_connect(sock: Any, address: Any) -> None:  # a connect that takes a while, as to a far server
        await asyncio.sleep(0.05)
        await sock_connect(sock, address)

    monkeypatch.setattr(loop, "sock_connect", slow_connect)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        client: AsyncMongoClient = AsyncMongoClient(embedded_store.uri)
        await client.admin.command("ping")  # one connection in the pool; the reads below open more
        reads = [asyncio.create_task(client.db.things.find_one({"_id": "a"})) for _ in range(4)]
        await asyncio.sleep(0.02)  # they are connecting
        for read in reads:
            read.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
        await client.close()
        await asyncio.sleep(0.1)  # the connects still under way end
        del reads  # the cancelled tasks' tracebacks hold what their frames held
        gc.collect()
    unclosed = [w for w in caught if "unclosed <socket.socket" in str(w.message)]
    assert (unclosed == []) == (io == "patched"), f"{len(unclosed)} sockets left open"


def test_the_patch_is_pinned_to_one_pymongo_version(monkeypatch: pytest.MonkeyPatch):
    assert pymongo_io.apply()
    monkeypatch.setattr(pymongo, "__version__", "4.21.0")
    assert not pymongo_io.apply()
