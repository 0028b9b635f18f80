"""Live feeds on the SQLite engine as an operator's wall screen sees them: one dashboard leaving, a slow
one, or a client that hangs up never silences the others, and nothing goes quiet unannounced.
(A wedged store's effect on keep-alive is in ``test_store_faults.py``.)
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.e2e.conftest import ADMIN, LoggedServer, logged_server
from tests.e2e.graphql_ws import PROTOCOL, GraphQLWebSocket, next_payload

REFUSALS = "subscription{ refusalEvents{ type refusal{ offlineId } } }"
# A dashboard asking for a lot per event: fills its connection's buffers quickly when it stops reading.
HEAVY_FIELDS = "id reason code field recordId offlineId recordType status action"
HEAVY = "subscription{ refusalEvents{ " + " ".join(f"r{i}: refusal{{ {HEAVY_FIELDS} }}" for i in range(25)) + " } }"
PUSH = "mutation($i: PushInput!){pushChanges(input:$i){results{status}}}"
SETTINGS = {
    "FIELDSYNC_WS_MAX_BACKLOG": "200",
    "FIELDSYNC_WS_SEND_BUFFER_BYTES": "16384",
    "FIELDSYNC_RATE_LIMIT_PER_MINUTE": "0",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    directory = tmp_path_factory.mktemp("feeds")
    with logged_server(directory, ["--data-dir", str(directory / "data")], SETTINGS) as started:
        yield started


@pytest.fixture(scope="module")
def device(server: LoggedServer) -> str:
    rep = server.data('mutation{createUser(input:{name:"Ana", role:REP}){token}}')["createUser"]["token"]
    return server.data(
        'mutation{registerDevice(input:{deviceId:"d1", name:"Phone", platform:"android"}){token}}', token=rep
    )["registerDevice"]["token"]


def refused(prefix: str, n: int) -> list[dict[str, Any]]:
    """Changes refused with ACKNOWLEDGE (a malformed plannedAt): each is a refusal event, none blocks the next."""
    return [
        {
            "offlineId": f"{prefix}-{i}",
            "recordType": "VISIT",
            "recordId": f"v-{prefix}-{i}",
            "operation": "UPSERT",
            "capturedAt": "2026-11-20T09:00:00+08:00",
            "fields": {"outletId": "o1", "status": "PLANNED", "plannedAt": "not a time"},
        }
        for i in range(n)
    ]


def push(server: LoggedServer, token: str, changes: list[dict[str, Any]]) -> None:
    results = server.data(PUSH, {"i": {"deviceId": "d1", "changes": changes}}, token=token)["pushChanges"]["results"]
    assert {r["status"] for r in results} == {"REFUSED"}


async def until_subscribers(server: LoggedServer, count: int) -> None:
    async with asyncio.timeout(60):
        while (
            f"fieldsync_subscribers {count}\n" not in (await asyncio.to_thread(httpx.get, f"{server.url}/metrics")).text
        ):
            await asyncio.sleep(0.05)


async def offline_ids(feed: asyncio.Queue[dict[str, Any]], n: int) -> list[str]:
    return [(await next_payload(feed, timeout=60))["refusalEvents"]["refusal"]["offlineId"] for _ in range(n)]


async def test_a_dashboard_leaving_never_silences_the_others(server: LoggedServer, device: str):
    dashboards = [await GraphQLWebSocket.open(server.url, ADMIN) for _ in range(3)]
    feeds = [await dashboard.subscribe(REFUSALS) for dashboard in dashboards]
    await until_subscribers(server, 3)
    big = asyncio.create_task(asyncio.to_thread(push, server, device, refused("big", 150)))
    await next_payload(feeds[0], timeout=60)  # the push is in flight: its events are being delivered
    await dashboards[0].close()  # one wall screen is switched off mid-stream
    await big
    await asyncio.to_thread(push, server, device, refused("after", 1))
    expected = [f"big-{i}" for i in range(150)] + ["after-0"]
    for dashboard, feed in zip(dashboards[1:], feeds[1:], strict=True):
        assert await offline_ids(feed, 151) == expected
        await dashboard.close()
    await until_subscribers(server, 0)


async def test_a_frozen_dashboard_is_dropped_with_1013_and_holds_nobody_up(server: LoggedServer, device: str):
    fast = await GraphQLWebSocket.open(server.url, ADMIN)
    fast_feed = await fast.subscribe(REFUSALS)
    url = server.url.replace("http", "ws", 1) + "/graphql"
    frozen = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.frozen_dashboard", url, ADMIN, HEAVY],
        stdout=subprocess.PIPE,
        text=True,
        env=server.env,
    )
    try:
        assert frozen.stdout is not None and frozen.stdout.readline().strip() == "ready"
        await until_subscribers(server, 2)
        frozen.send_signal(signal.SIGSTOP)  # the laptop's lid is closed: it reads nothing more
        rounds = [f"slow{n}" for n in range(3)]
        for prefix in rounds:
            await asyncio.to_thread(push, server, device, refused(prefix, 100))
        await until_subscribers(server, 1)  # the frozen one was dropped
    finally:
        frozen.send_signal(signal.SIGCONT)  # the lid opens in time to read the close frame (else: dropped, 1006)
    assert await offline_ids(fast_feed, 300) == [f"{p}-{i}" for p in rounds for i in range(100)]
    out, _ = await asyncio.to_thread(frozen.communicate, timeout=30)
    report = json.loads(out)
    assert (report["code"], report["reason"]) == (1013, "Try again later: too slow to take the events"), report
    assert report["received"] < 300
    assert "dropping a subscriber too slow" in server.log.read_text()
    await fast.close()
    await until_subscribers(server, 0)


async def test_clients_that_hang_up_are_one_info_line_each(server: LoggedServer):
    before = server.log.read_text()
    async with connect(server.url.replace("http", "ws", 1) + "/graphql", subprotocols=[PROTOCOL]) as socket_:  # type: ignore[list-item]
        await socket_.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {ADMIN}"}}))
        await socket_.recv()
        await socket_.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": REFUSALS}}))
        await until_subscribers(server, 1)
        socket_.transport.abort()  # gone without a close frame
    half = socket.create_connection(("127.0.0.1", server.port))  # a body that never finishes arriving
    half.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    half.close()
    await until_subscribers(server, 0)
    async with asyncio.timeout(10):
        while "before its request was read" not in server.log.read_text():
            await asyncio.sleep(0.05)
    added = server.log.read_text()[len(before) :]
    assert "closed its WebSocket" in added, added
    assert "Traceback" not in added and "Exception in ASGI application" not in added, added


def executions(server: LoggedServer) -> int:
    metrics = httpx.get(f"{server.url}/metrics").text
    return int(
        next(line.split()[1] for line in metrics.splitlines() if line.startswith("fieldsync_subscription_executions "))
    )


async def test_managers_share_one_execution_and_a_revoked_token_ends_only_its_own_feed(
    server: LoggedServer, device: str
):
    """A wall of managers' screens, each with its own token: one execution for all; a token revoked ends its feed
    (saying why), the others follow on. A rep's feed, another audience, is never shared with theirs."""
    tokens = []
    for name in ("Mei", "Raj"):
        user = server.data(f'mutation{{createUser(input:{{name:"{name}", role:MANAGER}}){{user{{id}}}}}}')["createUser"]
        tokens.append(
            server.data("mutation($u: ID!){issueToken(userId:$u){token info{id}}}", {"u": user["user"]["id"]})
        )
    before = await asyncio.to_thread(executions, server)
    screens = [await GraphQLWebSocket.open(server.url, issued["issueToken"]["token"]) for issued in tokens]
    feeds = [await screen.subscribe(REFUSALS) for screen in screens]
    phone = await GraphQLWebSocket.open(server.url, device)
    own = await phone.subscribe(REFUSALS)
    await until_subscribers(server, 3)
    assert await asyncio.to_thread(executions, server) == before + 2  # the managers' one, the rep's device's one
    await asyncio.to_thread(push, server, device, refused("shared", 1))
    assert [await offline_ids(feed, 1) for feed in (*feeds, own)] == [["shared-0"]] * 3

    revoked = tokens[0]["issueToken"]["info"]["id"]
    await asyncio.to_thread(server.data, "mutation($t: ID!){revokeToken(tokenId:$t){id}}", {"t": revoked})
    ended = await asyncio.wait_for(feeds[0].get(), 10)
    assert ended["type"] == "next" and ended["payload"]["errors"][0]["message"] == "token revoked", ended
    assert ended["payload"]["errors"][0]["extensions"]["code"] == "SUBSCRIPTION_CLOSED"
    assert (await asyncio.wait_for(feeds[0].get(), 10))["type"] == "complete"
    await asyncio.to_thread(push, server, device, refused("after-revoke", 1))
    assert await offline_ids(feeds[1], 1) == ["after-revoke-0"]
    assert await offline_ids(own, 1) == ["after-revoke-0"]
    for client in (*screens, phone):
        await client.close()
    await until_subscribers(server, 0)
