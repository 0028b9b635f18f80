"""A lean graphql-transport-ws subscriber for benches: a real WebSocket client on an asyncio Protocol.

A bench that measures a server's fan-out to a thousand subscribers on a machine of two cores
measures the subscribers too: a general client (``websockets``: a task per connection,
a reader, a queue, a ``recv`` per message) costs 60-120 µs per message, and a thousand of them
share the cores the server writes from. This one does only what the protocol asks, from the
transport's ``data_received``: the opening handshake with the ``graphql-transport-ws``
subprotocol (no extensions, so frames are never compressed), masked client frames, pongs
for the server's pings (WebSocket and graphql-transport-ws), and the server's frames parsed
whole (continuations joined). Each ``next`` message is timestamped when its last byte is in
the process, then decoded as JSON and handed to ``on_next``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from collections.abc import Callable
from typing import Any

TEXT, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x8, 0x9, 0xA, 0x0


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked frame (RFC 6455, 5.2-5.3), as a client must send them."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = os.urandom(4)
    stream = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return header + key + masked


class Subscriber(asyncio.Protocol):
    """One connection with one subscription: ``subscribed`` resolves once the subscribe message is sent,
    ``done`` after ``expected`` next messages; either fails with the connection."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        subscribe: dict[str, Any],
        expected: int,
        on_next: Callable[[dict[str, Any], float], None],
    ) -> None:
        self._host, self._port, self._token = host, port, token
        self._subscribe = subscribe
        self._expected = expected
        self._on_next = on_next
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._fragments = bytearray()
        self.received = 0
        loop = asyncio.get_running_loop()
        self.subscribed: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's duck-types asyncio.Transport
        key = base64.b64encode(os.urandom(16)).decode()
        self._transport.write(  # type: ignore[union-attr]
            (
                f"GET /graphql HTTP/1.1\r\nHost: {self._host}:{self._port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded and not self._handshake():
            return
        self._frames()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost after {self.received} events: {exc}"))

    def _handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        if not head.startswith("HTTP/1.1 101") or "graphql-transport-ws" not in head:
            self._fail(ConnectionError(f"upgrade refused: {head.splitlines()[0]}"))
            return False
        self._upgraded = True
        self._send({"type": "connection_init", "payload": {"authorization": f"Bearer {self._token}"}})
        return True

    def _frames(self) -> None:
        buffer = self._buffer
        start = 0
        while len(buffer) - start >= 2:
            first, second = buffer[start], buffer[start + 1]
            size, offset = second & 0x7F, start + 2
            if size == 126:
                if len(buffer) - offset < 2:
                    break
                (size,) = struct.unpack_from("!H", buffer, offset)
                offset += 2
            elif size == 127:
                if len(buffer) - offset < 8:
                    break
                (size,) = struct.unpack_from("!Q", buffer, offset)
                offset += 8
            if len(buffer) - offset < size:
                break  # the rest of this frame is still on its way
            arrived = time.time()
            payload = bytes(buffer[offset : offset + size])
            start = offset + size
            self._frame(first & 0x80, first & 0x0F, payload, arrived)
        del buffer[:start]

    def _frame(self, final: int, opcode: int, payload: bytes, arrived: float) -> None:
        if opcode == PING:
            self._write(client_frame(PONG, payload))
        elif opcode == CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self._fail(ConnectionError(f"closed by the server ({code}): {payload[2:].decode(errors='replace')}"))
        elif opcode in (TEXT, CONTINUATION):
            self._fragments += payload
            if final:
                text, self._fragments = bytes(self._fragments), bytearray()
                self._message(json.loads(text), arrived)

    def _message(self, message: dict[str, Any], arrived: float) -> None:
        kind = message.get("type")
        if kind == "next":
            self.received += 1
            self._on_next(message["payload"], arrived)
            if self.received == self._expected and not self.done.done():
                self.done.set_result(None)
        elif kind == "connection_ack":
            self._send({"id": "1", "type": "subscribe", "payload": self._subscribe})
            self.subscribed.set_result(None)
        elif kind == "ping":
            self._send({"type": "pong"})
        elif kind != "pong":
            self._fail(RuntimeError(f"unexpected message: {message}"))

    def _send(self, message: dict[str, Any]) -> None:
        self._write(client_frame(TEXT, json.dumps(message).encode()))

    def _write(self, frame: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame)

    def _fail(self, error: Exception) -> None:
        for future in (self.subscribed, self.done):
            if not future.done():
                future.set_exception(error)
        if self._transport is not None:
            self._transport.close()


async def subscribe(
    host: str,
    port: int,
    token: str,
    subscribe: dict[str, Any],
    expected: int,
    on_next: Callable[[dict[str, Any], float], None],
) -> Subscriber:
    """Open a connection and subscribe; the returned subscriber's ``done`` tells when it has had its events."""
    loop = asyncio.get_running_loop()
    _, subscriber = await loop.create_connection(
        lambda: Subscriber(host, port, token, subscribe, expected, on_next), host, port
    )
    try:
        await subscriber.subscribed
    except BaseException:
        subscriber.done.cancel()
        raise
    return subscriber
