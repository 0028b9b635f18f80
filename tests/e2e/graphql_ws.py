"""A minimal graphql-transport-ws client for the tests (what a dashboard does)."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

PROTOCOL = "graphql-transport-ws"


class GraphQLWebSocket:
    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str) -> GraphQLWebSocket:
        connection = await connect(url.replace("http", "ws", 1) + "/graphql", subprotocols=[PROTOCOL])  # type: ignore[list-item]
        await connection.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        ack = json.loads(await asyncio.wait_for(connection.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        return cls(connection)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> asyncio.Queue[dict[str, Any]]:
        operation_id = str(next(self._ids))
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[operation_id] = queue
        await self._connection.send(
            json.dumps(
                {"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
            )
        )
        return queue

    async def _read(self) -> None:
        async for raw in self._connection:
            message = json.loads(raw)
            if message.get("type") == "ping":
                await self._connection.send(json.dumps({"type": "pong"}))
            elif message.get("id") in self._queues:
                await self._queues[message["id"]].put(message)

    async def close(self) -> None:
        self._reader.cancel()
        await self._connection.close()


async def next_payload(queue: asyncio.Queue[dict[str, Any]], timeout: float = 15) -> dict[str, Any]:
    message = await asyncio.wait_for(queue.get(), timeout)
    assert message["type"] == "next", message
    return message["payload"]["data"]
