"""Subscription frames written straight onto a WebSocket's transport: the fast path of a fan-out.

Sent the ordinary way, every delivery of an event to every subscriber costs a task wake-up,
the ASGI send chain (Starlette, then uvicorn's websockets-sansio protocol) and, when the
client negotiated permessage-deflate, a compression of its own. A broadcast instead writes
a ``next`` frame for each follower at once, from one loop, as bytes framed here, when the
connection can take it without waiting (the connection's keep-alive ping, framed once for
all, is written the same way):

- the application has not closed the connection (Starlette marks it closed before it hands
  uvicorn the close frame, so no frame is ever written after one), the client has not
  left, the transport is not closing, and less than ``WRITE_BOUND`` bytes wait in its
  buffer (more means the kernel's buffer is full too: the client is behind);
- otherwise the frame takes the ordinary path: the follower's queue, its bounded backlog
  and the slow-subscriber drop (see ``service.api.broadcasts``);
- an operation's frames stay in order: its follower writes straight only with nothing
  queued or being sent, and its last frame (complete or error) is always queued. Only a
  ping or another operation's message, which nothing orders against it, may be overtaken.

The frames are what RFC 6455 has a server send: FIN, a text opcode, no mask. RSV1 is clear,
which RFC 7692 (section 6) allows even on a connection that negotiated permessage-deflate:
the message is simply uncompressed, and the compression context of the frames uvicorn
sends (acks, pongs, errors, completes) is not touched. ``tests/e2e/test_direct_frames.py``
checks with a real client, with and without compression, that frames written this way and
frames sent through uvicorn arrive whole and in order.
"""

from __future__ import annotations

import asyncio
import struct

from starlette.websockets import WebSocket, WebSocketState

WRITE_BOUND = 16 * 1024  # bytes waiting in a transport's buffer past which frames take the queued path
FIN_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """A complete, unmasked WebSocket text frame (RFC 6455, 5.2) carrying ``payload`` (UTF-8)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", FIN_TEXT, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", FIN_TEXT, 126, size)
    else:
        header = struct.pack("!BBQ", FIN_TEXT, 127, size)
    return header + payload


class DirectWriter:
    """Writes frames onto one connection's transport when it can take them now (the rule is in the docstring)."""

    def __init__(self, ws: WebSocket, transport: asyncio.Transport) -> None:
        self._ws = ws
        self._transport = transport

    def write(self, frame: bytes) -> bool:
        transport = self._transport
        if (
            self._ws.application_state is not WebSocketState.CONNECTED
            or self._ws.client_state is not WebSocketState.CONNECTED
            or transport.is_closing()
            or transport.get_write_buffer_size() >= WRITE_BOUND
        ):
            return False
        transport.write(frame)
        return True
