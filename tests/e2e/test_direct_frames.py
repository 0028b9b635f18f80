"""Frames a broadcast writes straight onto a connection's transport (``service.api.wire``), against a real
``fieldsync serve`` and a real client, with and without permessage-deflate negotiated: mixed with the frames
uvicorn sends (acks, pings, a query's result), they arrive whole and in order, and none arrives for an operation
the client completed. This fails if uvicorn or websockets change underneath the shortcut (the transport out of
reach, the frames no longer valid).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.conftest import ADMIN, LoggedServer, logged_server
from tests.e2e.graphql_ws import PROTOCOL
from tests.e2e.test_live_feeds import push, refused, until_subscribers
from tests.e2e.test_websocket_hygiene import rep_device

SMALL = "subscription{ refusalEvents{ refusal{ offlineId } } }"  # frames under 126 bytes: a 7-bit length
FIELDS = "offlineId id reason code field recordId recordType status action"
LARGE = "subscription{ refusalEvents{ " + " ".join(f"r{i}: refusal{{ {FIELDS} }}" for i in range(3)) + " } }"
SETTINGS = {"FIELDSYNC_WS_KEEPALIVE_SECONDS": "0.05", "FIELDSYNC_RATE_LIMIT_PER_MINUTE": "0"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    with logged_server(tmp_path_factory.mktemp("direct"), ["--memory"], SETTINGS) as started:
        yield started


@pytest.fixture(scope="module")
def device(server: LoggedServer) -> str:
    return rep_device(server, "Ana", "d1")[1]


def written_direct(server: LoggedServer) -> int:
    metrics = httpx.get(f"{server.url}/metrics").text
    return int(re.search(r"^fieldsync_frames_written_direct_total (\d+)$", metrics, re.M).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_frames_written_straight_arrive_whole_and_in_order(
    server: LoggedServer, device: str, compression: str | None
):
    url = server.url.replace("http", "ws", 1) + "/graphql"
    received: dict[str, list[Any]] = {"1": [], "2": [], "3": [], "q": []}
    pings = 0

    async def receive(socket_: ClientConnection, done: Callable[[], bool]) -> None:
        nonlocal pings
        async with asyncio.timeout(30):
            while not done():
                message = json.loads(await socket_.recv())
                if message["type"] == "ping":  # sent by uvicorn meanwhile (compressed, if negotiated)
                    pings += 1
                    await socket_.send(json.dumps({"type": "pong"}))
                else:
                    received[message["id"]].append(message)

    async with connect(url, subprotocols=[PROTOCOL], compression=compression) as socket_:  # type: ignore[list-item]
        negotiated = socket_.response.headers.get("Sec-WebSocket-Extensions", "") if socket_.response else ""
        assert ("permessage-deflate" in negotiated) == (compression is not None), negotiated
        await socket_.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {ADMIN}"}}))
        assert json.loads(await socket_.recv())["type"] == "connection_ack"
        # two operations in one broadcast (one frame, two ids) and one with frames of a 16-bit length
        for operation_id, query in (("1", SMALL), ("2", SMALL), ("3", LARGE)):
            await socket_.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query}}))
        await until_subscribers(server, 3)
        before = await asyncio.to_thread(written_direct, server)
        await asyncio.to_thread(push, server, device, refused(f"a{compression}", 50))
        await receive(socket_, lambda: len(received["2"]) == 50)
        await socket_.send(json.dumps({"id": "2", "type": "complete"}))  # the client stops one: nothing more for it
        await socket_.send(json.dumps({"id": "q", "type": "subscribe", "payload": {"query": "{ __typename }"}}))
        await asyncio.to_thread(push, server, device, refused(f"b{compression}", 50))
        await receive(socket_, lambda: sum(map(len, received.values())) == 2 * 100 + 50 + 2)

    expected = [f"{p}{compression}-{i}" for p in "ab" for i in range(50)]
    assert [m["payload"]["data"]["refusalEvents"]["refusal"]["offlineId"] for m in received["1"]] == expected
    assert [m["payload"]["data"]["refusalEvents"]["refusal"]["offlineId"] for m in received["2"]] == expected[:50]
    assert [m["payload"]["data"]["refusalEvents"]["r2"]["offlineId"] for m in received["3"]] == expected
    assert [m["type"] for m in received["q"]] == ["next", "complete"]
    assert pings > 0
    assert await asyncio.to_thread(written_direct, server) - before == 250  # all of them, none queued
