"""WebSocket hygiene against a real ``fieldsync serve`` (graphql-transport-ws): authenticate in time or be
closed, a bounded number of subscriptions, idle connections closed, revoked tokens cut off, and no
secret in the server's own log (uvicorn access log included).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.auth.tokens import token_hash
from tests.e2e.conftest import ADMIN, LoggedServer, Server, logged_server

SHORT = {
    "FIELDSYNC_WS_INIT_TIMEOUT_SECONDS": "0.5",
    "FIELDSYNC_WS_MAX_SUBSCRIPTIONS": "2",
    "FIELDSYNC_WS_KEEPALIVE_SECONDS": "0.2",
    "FIELDSYNC_WS_IDLE_TIMEOUT_SECONDS": "1",
    "FIELDSYNC_WS_REAUTH_SECONDS": "0.3",
}
REFUSALS = "subscription{ refusalEvents{ type } }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedServer]:
    """With short WebSocket timeouts."""
    with logged_server(tmp_path_factory.mktemp("serve"), ["--memory"], SHORT) as started:
        yield started


def rep_device(server: Server, name: str, device_id: str) -> tuple[str, str]:
    rep = server.data(f'mutation{{createUser(input:{{name:"{name}", role:REP}}){{token}}}}')["createUser"]["token"]
    device = server.data(
        "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
        {"i": {"deviceId": device_id, "name": "Phone", "platform": "android"}},
        token=rep,
    )["registerDevice"]["token"]
    return rep, device


async def open_socket(server: Server) -> ClientConnection:
    return await connect(server.url.replace("http", "ws", 1) + "/graphql", subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]


async def init(socket: ClientConnection, payload: Any) -> dict[str, Any]:
    await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
    return json.loads(await asyncio.wait_for(socket.recv(), 5))


async def subscribe(socket: ClientConnection, operation_id: str, query: str = REFUSALS) -> None:
    await socket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query}}))


async def until_closed(socket: ClientConnection, within: float, pong: bool = True) -> tuple[int, str, list[dict]]:
    """Read (answering pings unless told not to) until the server closes; its code, reason and messages."""
    seen: list[dict] = []
    try:
        async with asyncio.timeout(within):
            while True:
                message = json.loads(await socket.recv())
                seen.append(message)
                if message.get("type") == "ping" and pong:
                    await socket.send(json.dumps({"type": "pong"}))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the client side closed"
        return closed.rcvd.code, closed.rcvd.reason, seen
    raise AssertionError(f"still open after {within} s: {seen}")


async def read_for(socket: ClientConnection, seconds: float) -> list[dict]:
    """Everything received for ``seconds`` (pings answered); the connection must stay open."""
    seen: list[dict] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(socket.recv(), left))
        except TimeoutError:
            break
        seen.append(message)
        if message.get("type") == "ping":
            await socket.send(json.dumps({"type": "pong"}))
    return seen


async def test_a_connection_that_never_sends_connection_init_is_closed_4408(server: LoggedServer):
    socket = await open_socket(server)
    started = time.monotonic()
    code, reason, _ = await until_closed(socket, within=5)
    assert (code, reason) == (4408, "Connection initialisation timeout")
    assert 0.4 < time.monotonic() - started < 3


async def test_a_missing_unknown_or_revoked_token_is_closed_4403(server: LoggedServer):
    _, device = rep_device(server, "Ali", "dev-bad")
    server.data('mutation{revokeDevice(deviceId:"dev-bad"){id}}')
    for payload in ({}, {"authorization": "Bearer fs_nope"}, {"authorization": f"Bearer {device}"}, None, []):
        socket = await open_socket(server)
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        code, _, seen = await until_closed(socket, within=5)
        assert code in (4403, 4400) and not seen, (payload, code, seen)  # 4400: a payload that is not an object


async def test_a_connection_holds_at_most_the_configured_number_of_subscriptions(server: LoggedServer):
    socket = await open_socket(server)
    assert (await init(socket, {"authorization": f"Bearer {ADMIN}"}))["type"] == "connection_ack"
    for operation_id in ("1", "2", "3"):
        await subscribe(socket, operation_id)
    answers = [m for m in await read_for(socket, 0.5) if m.get("type") != "ping"]
    assert answers == [{"id": "3", "type": "error", "payload": [{"message": "Subscription limit reached"}]}]
    await socket.send(json.dumps({"id": "1", "type": "complete"}))  # room again
    await subscribe(socket, "4")
    assert [m for m in await read_for(socket, 0.5) if m.get("type") != "ping"] == []  # 2 and 4 run quietly
    await socket.close()


async def test_the_server_pings_and_closes_silent_or_idle_connections(server: LoggedServer):
    # answers pings but subscribes to nothing: closed as idle
    idle = await open_socket(server)
    assert (await init(idle, {"authorization": f"Bearer {ADMIN}"}))["type"] == "connection_ack"
    code, reason, seen = await until_closed(idle, within=4)
    assert (code, reason) == (1001, "Idle timeout: no subscription")
    assert any(m["type"] == "ping" for m in seen), "the server sends keep-alive pings"

    # holds a subscription but never answers a ping (a dead client): closed
    silent = await open_socket(server)
    assert (await init(silent, {"authorization": f"Bearer {ADMIN}"}))["type"] == "connection_ack"
    await subscribe(silent, "1")
    code, reason, _ = await until_closed(silent, within=4, pong=False)
    assert (code, reason) == (1001, "Idle timeout: nothing received from the client")

    # holds a subscription and answers pings: stays open past the idle timeout
    alive = await open_socket(server)
    assert (await init(alive, {"authorization": f"Bearer {ADMIN}"}))["type"] == "connection_ack"
    await subscribe(alive, "1")
    pings = [m for m in await read_for(alive, 2.5) if m.get("type") == "ping"]
    assert len(pings) >= 5
    await alive.close()


async def test_a_revoked_token_loses_its_subscription_and_its_connection(server: LoggedServer):
    _, device = rep_device(server, "Siti", "dev-rev")
    socket = await open_socket(server)
    assert (await init(socket, {"authorization": f"Bearer {device}"}))["type"] == "connection_ack"
    await subscribe(socket, "1")
    await asyncio.to_thread(server.data, 'mutation{revokeDevice(deviceId:"dev-rev"){id}}')
    started = time.monotonic()
    code, reason, seen = await until_closed(socket, within=5)
    assert (code, reason) in ((4403, "Forbidden: token revoked"), (4403, "Forbidden: device revoked"))
    assert time.monotonic() - started < 2
    ended = [m for m in seen if m.get("id") == "1"]
    assert ended and "SUBSCRIPTION_CLOSED" in json.dumps(ended), seen  # the hub ended it first


async def test_an_integrator_may_not_subscribe(server: LoggedServer):
    integrator = server.data('mutation{createUser(input:{name:"Ian", role:INTEGRATOR}){token}}')["createUser"]["token"]
    socket = await open_socket(server)
    assert (await init(socket, {"authorization": f"Bearer {integrator}"}))["type"] == "connection_ack"
    await subscribe(socket, "1")
    _, _, seen = await until_closed(socket, within=4)
    [answer] = [m for m in seen if m.get("id") == "1"][:1]
    assert "FORBIDDEN" in json.dumps(answer), answer


async def test_revocation_on_another_instance_closes_the_connection_here(serve, mongo_uri):
    shared = {"MONGODB_URI": mongo_uri, "FIELDSYNC_DATABASE": "e2e_ws_revocation", "FIELDSYNC_WS_REAUTH_SECONDS": "0.3"}
    first, second = serve(**shared), serve(**shared)
    try:
        _, device = rep_device(first, "Ali", "dev-x")
        socket = await open_socket(second)
        assert (await init(socket, {"authorization": f"Bearer {device}"}))["type"] == "connection_ack"
        await subscribe(socket, "1")
        await asyncio.to_thread(first.data, 'mutation{revokeDevice(deviceId:"dev-x"){id}}')
        code, reason, _ = await until_closed(socket, within=5)
        # revokeDevice marks the device and then its tokens: a re-check may meet either first
        assert (code, reason) in ((4403, "Forbidden: token revoked"), (4403, "Forbidden: device revoked"))
    finally:
        from pymongo import MongoClient

        with MongoClient(mongo_uri) as client:
            client.drop_database("e2e_ws_revocation")


async def test_the_server_log_never_shows_a_token_or_its_hash(server: LoggedServer):
    rep, device = rep_device(server, "Nur", "dev-log")
    secrets = [ADMIN, rep, device, "fs_wrong-token-for-the-log"]
    assert server.call("query{me{id}}", token="fs_wrong-token-for-the-log")["errors"]
    socket = await open_socket(server)
    await socket.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {secrets[-1]}"}}))
    assert (await until_closed(socket, within=5))[0] == 4403
    text = server.log.read_text()
    assert '"POST /graphql HTTP/1.1" 200' in text and "WebSocket /graphql" in text  # access log captured
    for secret in secrets:
        assert secret not in text and token_hash(secret) not in text
