"""A real ``fieldsync serve`` on the SQLite engine, with its store made to fail as it does in the field:
disk full, wedged (busy). Clients get a code they can act on, never the store's own words.
(A store that is gone, killed: ``test_store_restart.py``.)
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import ADMIN, Server, store_pid

# Words of the driver, the store and the machine that must never reach a client.
INTERNAL_TEXT = ("sqlite", "mongoeco", "pymongo", "127.0.0.1", "traceback", "disk is full", "i/o", "topology", "errno")
PUSH = "mutation($i: PushInput!){pushChanges(input:$i){results{status}}}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module, on the SQLite engine; the tests run in order, the store's end last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
    env |= {"FIELDSYNC_ADMIN_TOKEN": ADMIN, "PYTHONPATH": str(Path(__file__).parents[2])}
    env |= {"FIELDSYNC_STORE_TIMEOUT_SECONDS": "1.5", "FIELDSYNC_READY_TIMEOUT_SECONDS": "1"}
    env |= {"FIELDSYNC_WS_KEEPALIVE_SECONDS": "0.2", "FIELDSYNC_WS_REAUTH_SECONDS": "0.3"}
    env |= {"FIELDSYNC_WS_REAUTH_GRACE_SECONDS": "1.5", "FIELDSYNC_WS_IDLE_TIMEOUT_SECONDS": "3"}
    started = Server(["--data-dir", str(tmp_path_factory.mktemp("faults") / "data")], env).start()
    yield started
    started.stop()


def device(server: Server) -> str:
    rep = server.data('mutation{createUser(input:{name:"Ana", role:REP}){token}}')["createUser"]["token"]
    return server.data(
        'mutation{registerDevice(input:{deviceId:"d1", name:"Phone", platform:"android"}){token}}', token=rep
    )["registerDevice"]["token"]


def push(server: Server, token: str, n: int) -> httpx.Response:
    change = {
        "offlineId": f"o-{n}",
        "recordType": "OUTLET",
        "recordId": f"outlet-{n}",
        "operation": "UPSERT",
        "capturedAt": "2026-11-20T09:00:00+08:00",
        "fields": {"name": "Kedai " + "x" * 4000, "city": "Ipoh"},
    }
    return httpx.post(
        f"{server.url}/graphql",
        json={"query": PUSH, "variables": {"i": {"deviceId": "d1", "changes": [change]}}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def assert_unavailable(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["retry-after"]) >= 1
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE", error
    assert error["extensions"]["reason"] == reason
    assert error["extensions"]["retryAfter"] == int(response.headers["retry-after"])
    for words in INTERNAL_TEXT:
        assert words not in response.text.lower(), (words, response.text)


def readyz(server: Server) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=10)


def test_disk_full_is_unavailable_and_not_ready_until_space_returns(server: Server):
    token = device(server)
    assert push(server, token, 0).json()["data"]["pushChanges"]["results"] == [{"status": "MERGED"}]
    pid = store_pid(server)
    # No write past the write-ahead log's end, where a write appends: a full disk. (The limit is
    # per file: the store's total size would let the log grow, and a small write fit there.)
    size = (Path(server.args[1]) / "fieldsync.sqlite3-wal").stat().st_size
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
    try:
        responses = [push(server, token, n) for n in range(1, 4)]
        assert_unavailable(responses[-1], "disk full")
        assert readyz(server).status_code == 503
        assert readyz(server).json() == {"status": "unavailable", "store": "disk full"}
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert push(server, token, 9).json()["data"]["pushChanges"]["results"] == [{"status": "MERGED"}]
    assert readyz(server).status_code == 200


async def test_a_wedged_store_is_unavailable_over_http_and_websocket_then_recovers(server: Server):
    pid = store_pid(server)
    os.kill(pid, signal.SIGSTOP)
    try:
        response = httpx.post(
            f"{server.url}/graphql", json={"query": "{me{id}}"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert_unavailable(response, "timed out")
        assert readyz(server).json() == {"status": "unavailable", "store": "timed out"}
        async with connect(
            server.url.replace("http", "ws", 1) + "/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as socket:
            await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {ADMIN}"}}))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1013,
                "Try again later: the store is timed out",
            )
    finally:
        os.kill(pid, signal.SIGCONT)
    assert server.data("{me{role}}") == {"me": {"role": "ADMIN"}}
    assert readyz(server).status_code == 200


async def test_pings_never_wait_for_the_store_and_unchecked_tokens_close_by_the_rule(server: Server):
    async with connect(
        server.url.replace("http", "ws", 1) + "/graphql", subprotocols=["graphql-transport-ws"]
    ) as socket_:  # type: ignore[list-item]
        await socket_.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {ADMIN}"}}))
        assert json.loads(await socket_.recv())["type"] == "connection_ack"
        await socket_.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "subscription{ refusalEvents{ type } }"}})
        )
        pid = store_pid(server)
        os.kill(pid, signal.SIGSTOP)  # the store wedges: token re-checks cannot finish
        try:
            pings, stopped = [], time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    message = json.loads(await asyncio.wait_for(socket_.recv(), 5))
                    if message["type"] == "ping":
                        pings.append(time.monotonic() - stopped)
                        await socket_.send(json.dumps({"type": "pong"}))
        finally:
            os.kill(pid, signal.SIGCONT)
    lasted = time.monotonic() - stopped
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1013,
        "Try again later: the token could not be re-checked",
    )
    assert 1.4 < lasted < 6, lasted  # kept through the grace period (1.5 s), then closed
    gaps = [b - a for a, b in zip([0.0, *pings], pings, strict=False)]
    assert len(pings) >= 5 and max(gaps) < 0.8, pings  # pings every 0.2 s while the store was wedged


def test_a_store_that_is_gone_is_unavailable(server: Server):
    data = Path(server.args[1])
    data.rename(data.with_name("moved-away"))  # the service's restarts of its store fail while the test looks
    data.write_text("not a data directory")  # (on a quiet machine a restart is back within two seconds)
    os.kill(store_pid(server), signal.SIGKILL)
    response = httpx.post(
        f"{server.url}/graphql", json={"query": "{me{id}}"}, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    for words in INTERNAL_TEXT:
        assert words not in response.text.lower(), (words, response.text)
    assert readyz(server).status_code == 503
    server.kill()  # a graceful stop would wait on the store it no longer has
