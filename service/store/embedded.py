"""The embedded MongoDB-compatible wire server (mongoeco), run in its own process.

`serve` and the test session start it as a child process so that its CPU-heavy
work never runs on the service's event loop. The child prints its URI on the
first line of stdout and serves until stdin closes or it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class EmbeddedStore:
    """A running embedded wire server child process."""

    process: subprocess.Popen[str]
    uri: str

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


def start_embedded_store(data_dir: Path | None, host: str = "127.0.0.1") -> EmbeddedStore:
    """Start the wire server; `data_dir=None` keeps everything in memory."""
    command = [sys.executable, "-m", "service.store.embedded", "--host", host]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["--sqlite", str(data_dir / "fieldsync.sqlite3")]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    uri = process.stdout.readline().strip()
    if not uri.startswith("mongodb://"):
        process.kill()
        raise RuntimeError(f"embedded store did not start (said {uri!r})")
    return EmbeddedStore(process=process, uri=uri)


async def _serve(host: str, port: int, sqlite_path: str | None) -> None:
    from mongoeco.engines import MemoryEngine, SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    from service.store import embedded_index_plans, embedded_patches, embedded_transactions

    # Before the engine exists: the patches keep inserts from scanning the collection.
    embedded_patches.apply()
    embedded_index_plans.apply()  # FieldSync's query shapes answered from an index
    embedded_transactions.apply()  # wait for a transaction instead of failing; abort failed commits
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
        print(server.address.uri, flush=True)
        await stop.wait()


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
