"""Real `fieldsync serve` processes, talked to over HTTP and WebSocket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ADMIN = "e2e-admin-token"
# Changes in these tests are captured on fixed dates, days before the clock: a new rep's first pushes are
# not held to the 24 h SYNC_DELAY line (tests/conftest.py does the same; test_anomaly_flags.py captures now).
FIXED_DATES = {"FIELDSYNC_ANOMALY_DELAY_WITHOUT_BASELINE_HOURS": str(24 * 365)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    args: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.process = self.launch([sys.executable, "-m", "service.cli", "serve", "--port", str(self.port), *self.args])
        deadline = time.monotonic() + 90  # a shared, busy machine can take this long
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert self.process.poll() is None, f"the server exited during start-up: {self.exit_report()}"
            time.sleep(0.1)
        self.kill()  # never leave a half-started server (and its store) running
        raise TimeoutError("server did not become ready")

    def launch(self, command: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def exit_report(self) -> str:
        return "see its logs"

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def call(
        self, query: str, variables: dict[str, Any] | None = None, token: str = ADMIN, timeout: float = 60
    ) -> dict:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        return response.json()

    def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str = ADMIN, timeout: float = 60
    ) -> dict:
        body = self.call(query, variables, token, timeout)
        assert not body.get("errors"), body
        return body["data"]


def store_pid(server: Server) -> int:
    """The process id of the embedded store child of ``server``."""
    assert server.process is not None
    tasks = Path(f"/proc/{server.process.pid}/task").iterdir()  # any thread may have started it
    children = [c for task in tasks for c in (task / "children").read_text().split()]
    [pid] = [int(c) for c in children if b"service.store.embedded" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return pid


def restarted_store_pid(server: Server, old: int, within: float = 30) -> int:
    """The process id of the store child that replaced ``old``, once the service has started it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with suppress(ValueError, FileNotFoundError):  # none yet, or one exiting as we look
            if (pid := store_pid(server)) != old:
                return pid
        time.sleep(0.1)
    raise TimeoutError(f"no new store child within {within} s")


class LoggedServer(Server):
    """A ``serve`` process whose stdout and stderr (app and uvicorn logs) go to a file."""

    log: Path

    def launch(self, command: list[str]) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as sink:
            return subprocess.Popen(command, env=self.env, stdout=sink, stderr=subprocess.STDOUT)

    def exit_report(self) -> str:
        return self.log.read_text()


@contextmanager
def logged_server(directory: Path, store: list[str], settings: dict[str, str]) -> Iterator[LoggedServer]:
    """One ``serve`` for a whole module (starting one costs seconds), logging to ``directory``/server.log."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
    env |= {"FIELDSYNC_ADMIN_TOKEN": ADMIN, "PYTHONPATH": str(Path(__file__).parents[2]), "PYTHONUNBUFFERED": "1"}
    started = LoggedServer(store, env | settings)
    started.log = directory / "server.log"
    started.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
    env["FIELDSYNC_ADMIN_TOKEN"] = ADMIN
    env |= FIXED_DATES
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    return env


@pytest.fixture
def serve(server_env: dict[str, str]) -> Iterator[Any]:
    started: list[Server] = []

    def start(*args: str, **env: str) -> Server:
        server = Server(list(args), {**server_env, **env}).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
