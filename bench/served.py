"""A real `fieldsync serve` process for the benches, and its CPU read from /proc.

The embedded store runs in its own child process, so the server process's CPU
(utime + stime of /proc/<pid>/stat) is the service's own cost. Requests go over one
keep-alive HTTP connection from this (separate) process, one after another.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.peers import peer_us

ADMIN = "bench-admin-token"
TICKS = os.sysconf("SC_CLK_TCK")

PUSH = """mutation($i: PushInput!){ pushChanges(input:$i){ syncId serverTime results{
  offlineId status blockedBy duplicateOf
  record{ recordType recordId version deleted fields crdtState crdtEpoch }
  conflict{ id status baseVersion serverVersion changedFields deviceFields serverFields }
  refusal{ id code reason field action status attempts related{recordType recordId} } } } }"""


class Served:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.http = httpx.Client(base_url=url, timeout=120)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def data(self, query: str, variables: dict[str, Any] | None = None, token: str = ADMIN) -> dict[str, Any]:
        response = self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def rep(self, name: str) -> tuple[str, str]:
        """A new rep: its id and token."""
        created = self.data(
            "mutation($i: CreateUserInput!){createUser(input:$i){user{id} token}}",
            {"i": {"name": name, "role": "REP"}},
        )["createUser"]
        return created["user"]["id"], created["token"]

    def device(self, rep_token: str, device_id: str) -> str:
        """A device the rep registers: its token."""
        registered = self.data(
            "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
            {"i": {"deviceId": device_id, "name": "Phone", "platform": "android", "appVersion": "1.0"}},
            rep_token,
        )
        return registered["registerDevice"]["token"]

    def write(self, record_type: str, record_id: str, fields: dict[str, Any]) -> None:
        self.data(
            "mutation($i: WriteRecordInput!){writeRecord(input:$i){status}}",
            {"i": {"recordType": record_type, "recordId": record_id, "fields": fields}},
        )

    def push(self, token: str, device_id: str, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.data(PUSH, {"i": {"deviceId": device_id, "changes": changes}}, token)["pushChanges"]["results"]


def peer_ratios(us_per_change: float) -> dict[str, float | str]:
    """Our CPU per change over each peer's (bench/peers.py), and where the peers' figures come from."""
    figures, source = peer_us()
    return {**{f"x_{peer}": round(us_per_change / us, 1) for peer, us in figures.items()}, "peers": source}


@contextmanager
def served() -> Iterator[Served]:
    """`fieldsync serve --memory` on a free port, started and stopped around the block."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
    env.update(FIELDSYNC_ADMIN_TOKEN=ADMIN, FIELDSYNC_RATE_LIMIT_PER_MINUTE="0", PYTHONPATH=str(Path.cwd()))
    command = [sys.executable, "-m", "service.cli", "serve", "--memory", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Served(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if server.http.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "fieldsync serve did not start"
            time.sleep(0.1)
        yield server
    finally:
        server.http.close()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
