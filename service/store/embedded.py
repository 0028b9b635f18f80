"""The embedded MongoDB-compatible wire server (mongoeco), run in its own process.

`serve` and the test session start it as a child process so that its CPU-heavy
work never runs on the service's event loop. The child prints its URI on the
first line of stdout and serves until stdin closes or it is terminated.

After its URI the child writes a line ``<database> <head>`` to stdout whenever a commit
moves a database's global sequence (``service.store.sequence``: the numbers a writing
transaction takes), without blocking: ``listen`` turns those lines into a callback, so the
service's event follower reads only when events it has not seen committed, and knows
where the sequence stands without asking the store.

``supervise`` watches the child from the service: if it dies (killed, crashed), a
new one starts on the same port and the same SQLite file (SQLite rolls back what
was not committed), the driver reconnects on its own, and the service carries on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("fieldsync.store")
REAP_EVERY = 1.0  # seconds between looks for abandoned transactions
TAKEN_AT_MOST = 10_000  # open transactions' sequence heads remembered (a transaction holds one)


@dataclass
class EmbeddedStore:
    """A running embedded wire server child process."""

    process: subprocess.Popen[str]
    uri: str
    data_dir: Path | None = None
    restarts: int = 0
    on_head: Callable[[str, int], None] | None = None

    def listen(self, on_head: Callable[[str, int], None]) -> None:
        """Call ``on_head(database, head)`` (in the running loop) whenever the child says a commit moved
        that database's sequence to ``head``."""
        self.on_head = on_head
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        loop = asyncio.get_running_loop()
        unfinished = b""

        def readable() -> None:
            nonlocal unfinished
            try:
                said = os.read(fd, 65536)
            except OSError:
                said = b""
            if not said:  # the child is gone; ``supervise`` starts another and listens again
                loop.remove_reader(fd)
                return
            *lines, unfinished = (unfinished + said).split(b"\n")
            for line in lines:
                database, _, head = line.decode().rpartition(" ")
                on_head(database, int(head))

        loop.add_reader(fd, readable)

    @property
    def port(self) -> int:
        return urlsplit(self.uri).port or 0

    def restart(self) -> None:
        """A new child on the same address and data (the old one must have exited)."""
        self.stop()
        host = urlsplit(self.uri).hostname or "127.0.0.1"
        started = start_embedded_store(self.data_dir, host, port=self.port)
        self.process, self.restarts = started.process, self.restarts + 1

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def start_embedded_store(data_dir: Path | None, host: str = "127.0.0.1", *, port: int = 0) -> EmbeddedStore:
    """Start the wire server; `data_dir=None` keeps everything in memory."""
    command = [sys.executable, "-m", "service.store.embedded", "--host", host, "--port", str(port)]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["--sqlite", str(data_dir / "fieldsync.sqlite3")]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    uri = process.stdout.readline().strip()
    if not uri.startswith("mongodb://"):
        process.kill()
        raise RuntimeError(f"embedded store did not start (said {uri!r})")
    return EmbeddedStore(process=process, uri=uri, data_dir=data_dir)


async def supervise(
    store: EmbeddedStore, restarted: Callable[[], Awaitable[None]], *, check_every: float = 0.5
) -> None:
    """Run until cancelled: when the child has exited, start another and await ``restarted()``.

    Looking costs one ``waitpid`` per ``check_every`` seconds and nothing in the store.
    """
    while True:
        await asyncio.sleep(check_every)
        code = store.process.poll()
        if code is None:
            continue
        log.error("embedded store exited (code %s); starting it again on port %s", code, store.port)
        try:
            await asyncio.to_thread(store.restart)
            if store.on_head is not None:
                store.listen(store.on_head)
            await restarted()
        except Exception:
            log.exception("embedded store restart failed; trying again")
            continue
        log.warning("embedded store is back (restart %d)", store.restarts)


async def _serve(host: str, port: int, sqlite_path: str | None) -> None:
    from mongoeco.engines import MemoryEngine, SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    from service.store import (
        embedded_array_paths,
        embedded_bulk_write,
        embedded_catalog_checks,
        embedded_codec,
        embedded_document_reads,
        embedded_index_backfill,
        embedded_index_plans,
        embedded_insert_batch,
        embedded_memory_maps,
        embedded_memory_ranges,
        embedded_multikey_entries,
        embedded_outbox,
        embedded_partial_indexes,
        embedded_patches,
        embedded_readers,
        embedded_transaction_thread,
        embedded_transactions,
        embedded_ttl_entries,
        embedded_wire_values,
    )

    # Before the engine exists: the patches keep inserts from scanning the collection.
    embedded_patches.apply()
    embedded_index_plans.apply()  # FieldSync's query shapes answered from an index
    embedded_memory_maps.apply()  # the memory engine: one persistent map per collection and per index, not three
    embedded_memory_ranges.apply()  # and on the memory engine, ranges and sorts from an ordered index
    embedded_transactions.apply()  # wait for a transaction instead of failing; abort failed commits
    embedded_readers.apply()  # reads outside a transaction on a connection of their own: they never wait
    embedded_transaction_thread.apply()  # a transaction's engine work on the loop's thread, not handed to workers
    embedded_outbox.apply()  # no change-stream outbox: nothing reads it, and it cost as much as a push's writes
    embedded_ttl_entries.apply()  # a write to a collection with a TTL index does not scan its TTL entries
    embedded_multikey_entries.apply()  # nor one to a collection with array entries those entries
    embedded_index_backfill.apply()  # opening the file does not rebuild every document's index entries
    embedded_document_reads.apply()  # reading a document does not inspect the codec's signature again
    embedded_codec.apply()  # a plain document is encoded in one walk, not validated once per level
    embedded_partial_indexes.apply()  # a write computes only its own collection's index keys
    embedded_wire_values.apply()  # a plain value crosses the wire without being inspected
    embedded_array_paths.apply()  # a top-level field's arrays found with one look, not a walk
    embedded_catalog_checks.apply()  # a transaction checks once whether another connection changed the file
    embedded_insert_batch.apply()  # a batch of new plain documents written with one statement per table
    embedded_bulk_write.apply()  # MongoDB 8.0's bulkWrite: writes to several collections in one command
    # No cap on documents an aggregation may hold: a busy day's report groups more than mongoeco's default 50k.
    engine = (
        SQLiteEngine(sqlite_path, aggregation_materialization_limit=None)
        if sqlite_path
        else MemoryEngine(aggregation_materialization_limit=None)
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: _on_stdin(stop))
    async with AsyncMongoEcoProxyServer(engine=engine, host=host, port=port) as server:
        _freeze_what_survives()
        print(server.address.uri, flush=True)
        os.set_blocking(sys.stdout.fileno(), False)
        _say_heads(loop)
        reaper = asyncio.create_task(_reap(), name="reap-abandoned-transactions")
        await stop.wait()
        reaper.cancel()


def _freeze_what_survives() -> None:
    """The store's heap is mostly its data, and lives long. A full collection walks all of it (70-90 ms
    at a few thousand documents in memory, more as they grow), and every command waits meanwhile;
    so what start-up built, and then what survives each full collection, is frozen (``gc.freeze``):
    the next walks only what came since. The price: a cycle frozen while alive is not collected when
    it dies (a client connection's objects, when one closes: the service keeps its pool's connections)."""
    gc.freeze()

    def frozen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            gc.freeze()

    gc.callbacks.append(frozen)


def _say_heads(loop: asyncio.AbstractEventLoop) -> None:
    """After each commit that moved a database's sequence, ``<database> <head>`` on stdout.

    A transaction's head is the counter its ``findAndModify`` on the sequence returned; it is
    said when that transaction commits (forgotten if it aborts). The heads of a loop turn go
    out in one write; what a full pipe refuses goes out with the next commit's.
    """
    from mongoeco.wire.executor import WireCommandExecutor

    from service.store import sequence

    original = WireCommandExecutor.execute_prepared
    taken: dict[str, tuple[str, int]] = {}  # by session: the head its open transaction took
    unsaid: dict[str, int] = {}  # by database: a head committed, not said yet
    pending = False

    def say() -> None:
        nonlocal pending
        pending = False
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(sys.stdout.fileno(), "".join(f"{db} {head}\n" for db, head in unsaid.items()).encode())
            unsaid.clear()

    async def execute_prepared(self: Any, context: Any) -> dict[str, Any]:
        nonlocal pending
        reply = await original(self, context)
        moved = None
        if (head := sequence.head_taken(context.command_document, reply)) is not None:
            if context.session is not None and context.session.transaction_active:
                if len(taken) > TAKEN_AT_MOST:  # sessions that vanished mid-transaction (the reaper aborts them)
                    taken.clear()
                taken[_session_of(context)] = (context.db_name, head)
            else:
                moved = (context.db_name, head)
        elif context.command_name == "commitTransaction" and reply.get("ok") == 1:
            moved = taken.pop(_session_of(context), None)
        elif context.command_name == "abortTransaction":
            taken.pop(_session_of(context), None)
        if moved is not None:
            database, head = moved
            unsaid[database] = max(unsaid.get(database, 0), head)
            if not pending:
                pending = True
                loop.call_soon(say)
        return reply

    WireCommandExecutor.execute_prepared = execute_prepared  # type: ignore[method-assign]


def _session_of(context: Any) -> str:
    """The session a wire command runs in (its ``lsid``), as a key."""
    return repr(context.raw_body.get("lsid"))


async def _reap() -> None:
    from service.store import embedded_transactions

    while True:
        await asyncio.sleep(REAP_EVERY)
        if aborted := embedded_transactions.reap_abandoned():
            print(f"aborted {aborted} abandoned transaction(s)", file=sys.stderr, flush=True)


def _on_stdin(stop: asyncio.Event) -> None:
    # The parent holds our stdin open; end of file means it has gone away.
    if not os.read(sys.stdin.fileno(), 1024):
        stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sqlite", default=None, help="SQLite file; in memory when omitted")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.sqlite))


if __name__ == "__main__":
    main()
