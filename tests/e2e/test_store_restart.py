"""The embedded store heals itself: a killed store child is started again, an instance
killed mid-push leaves no transaction behind, and no acknowledged change is lost or doubled.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, restarted_store_pid, store_pid

PUSH = "mutation($i: PushInput!){pushChanges(input:$i){results{offlineId status}}}"
HISTORY = (
    'query{syncHistory(filter:{deviceId:"d1", actions:[MERGED]}, first:1000)'
    "{edges{node{recordId}} pageInfo{hasNextPage}}}"
)
INTERNAL_TEXT = ("sqlite", "mongoeco", "pymongo", "127.0.0.1", "traceback", "topology")


def rep_device(server: Server, device_id: str = "d1") -> str:
    rep = server.data('mutation{createUser(input:{name:"Ana", role:REP}){token}}')["createUser"]["token"]
    query = 'mutation($d: ID!){registerDevice(input:{deviceId:$d, name:"Phone", platform:"android"}){token}}'
    return server.data(query, {"d": device_id}, token=rep)["registerDevice"]["token"]


def visits(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "offlineId": f"o-{n}",
            "recordType": "OUTLET",
            "recordId": f"outlet-{n}",
            "operation": "UPSERT",
            "capturedAt": "2026-11-20T09:00:00+08:00",
            "fields": {"name": f"Kedai {n}", "city": "Ipoh"},
        }
        for n in range(first, first + count)
    ]


def push(server: Server, token: str, changes: list[dict[str, Any]], device_id: str = "d1") -> httpx.Response:
    return httpx.post(
        f"{server.url}/graphql",
        json={"query": PUSH, "variables": {"i": {"deviceId": device_id, "changes": changes}}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


def accepted(response: httpx.Response) -> bool:
    """A push answered with outcomes (True) or with UNAVAILABLE, never anything else (False)."""
    if response.status_code == 200 and "data" in response.json() and response.json()["data"]:
        return True
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    assert int(response.headers["retry-after"]) >= 1
    for words in INTERNAL_TEXT:
        assert words not in response.text.lower(), (words, response.text)
    return False


def push_until_accepted(server: Server, token: str, changes: list[dict[str, Any]], within: float = 30) -> list[str]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        response = push(server, token, changes)
        if accepted(response):
            return [r["status"] for r in response.json()["data"]["pushChanges"]["results"]]
        time.sleep(0.2)
    raise TimeoutError("the service did not recover")


def merged(server: Server) -> list[str]:
    """The records device d1's changes merged into, once per merge, from the sync history."""
    body = server.data(HISTORY)["syncHistory"]
    assert not body["pageInfo"]["hasNextPage"]
    return sorted(edge["node"]["recordId"] for edge in body["edges"])


@pytest.fixture
def sqlite_server(serve: Any, tmp_path: Path) -> Server:
    return serve("--data-dir", str(tmp_path / "data"))


def test_a_killed_store_is_restarted_and_no_acknowledged_change_is_lost_or_doubled(sqlite_server: Server):
    server = sqlite_server
    token = rep_device(server)
    assert push_until_accepted(server, token, visits(0, 5)) == ["MERGED"] * 5
    outcomes: dict[int, bool] = {}

    def keep_pushing() -> None:  # batches in flight while the store dies
        for batch in range(1, 9):
            outcomes[batch] = accepted(push(server, token, visits(batch * 5, 5)))

    pusher = threading.Thread(target=keep_pushing)
    pusher.start()
    time.sleep(0.3)
    old = store_pid(server)
    started = time.monotonic()
    subprocess.run(["kill", "-KILL", str(old)], check=True)
    pusher.join(120)
    assert not pusher.is_alive()
    restarted_store_pid(server, old)  # the pushes may all have been answered before it is back
    # Every batch answered either with outcomes or UNAVAILABLE; sent again, each lands exactly once.
    for batch, ok in outcomes.items():
        statuses = push_until_accepted(server, token, visits(batch * 5, 5))
        assert set(statuses) <= ({"DUPLICATE"} if ok else {"DUPLICATE", "MERGED"}), (batch, statuses)
    assert time.monotonic() - started < 60
    assert merged(server) == sorted(f"outlet-{n}" for n in range(45))  # each exactly once
    assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled


HOLD_A_TRANSACTION = """
import sys, time
from pymongo import MongoClient
client = MongoClient(sys.argv[1])
session = client.start_session()
session.start_transaction()
client["fieldsync"]["records"].insert_one({"_id": "OUTLET:half-written", "seq": 0}, session=session)
print("holding", flush=True)
time.sleep(600)
"""


def test_an_instance_killed_mid_transaction_leaves_nothing_behind(serve: Any, tmp_path: Path, server_env: dict):
    store = subprocess.Popen(
        [sys.executable, "-m", "service.store.embedded", "--sqlite", str(tmp_path / "shared.sqlite3")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=server_env,
    )
    try:
        assert store.stdout is not None
        uri = store.stdout.readline().strip()
        survivor = serve(MONGODB_URI=uri)
        token = rep_device(survivor)
        victim = subprocess.Popen([sys.executable, "-c", HOLD_A_TRANSACTION, uri], stdout=subprocess.PIPE, text=True)
        assert victim.stdout is not None and victim.stdout.readline().strip() == "holding"
        victim.kill()  # mid-transaction: the store's one SQLite transaction is now nobody's
        victim.wait()
        victim.stdout.close()
        started = time.monotonic()
        assert push_until_accepted(survivor, token, visits(0, 3)) == ["MERGED"] * 3
        assert time.monotonic() - started < 30  # waited for the abandoned transaction's abort, not forever
        assert httpx.get(f"{survivor.url}/readyz", timeout=10).status_code == 200
        assert "half-written" not in merged(survivor)
        second = serve(MONGODB_URI=uri)  # another instance starts on the same store
        assert push_until_accepted(second, token, visits(0, 3)) == ["DUPLICATE"] * 3
    finally:
        store.terminate()
        _, errors = store.communicate(timeout=10)
    assert "aborted 1 abandoned transaction(s)" in errors
