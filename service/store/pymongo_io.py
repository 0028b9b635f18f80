"""PyMongo's async replies awaited in the caller's task: no two tasks and two waits per store command.

PyMongo 4.20.0 receives each reply (``network_layer.async_receive_message``) by starting two
tasks, the read and a watch that polls every 0.5 s whether the connection's pool interrupted
it, and waiting on them with ``asyncio.wait``; each send runs under ``asyncio.wait_for``. That
is ~70-90 µs of the ~390 µs of service CPU one store command costs on this machine, and a push
sends 14. Here the read is awaited directly, under the same deadline (the operation's
``timeoutMS`` when it has one, else the socket timeout), and the send writes to the transport,
which buffers what it cannot send yet and never waits, so a timeout around it never fired.

What the watch was for stays: a pool cleared with ``interruptInUseConnections`` (its server's
heartbeat failed) cancels the contexts of its connections in use, and an operation waiting on
one must fail rather than wait for an answer that may never come. Cancelling a connection's
context here closes its transport, which fails a waiting read at once with the same
``_OperationCancelled`` (the watch took up to 0.5 s), and any later use of the connection with
a connection error.

A connection being opened finishes even when its caller is cancelled (a request whose client left,
a live feed that ended): PyMongo 4.20.0 closes the socket it connects only on ``OSError``, so a task
cancelled mid-connect left an open socket to the garbage collector (a file descriptor until then, and
a ``ResourceWarning`` that failed whichever test was running when it was collected). The connect now
runs on, shielded, and its socket is closed when it is done, as PyMongo does for a TLS handshake.

Applied once, on PyMongo 4.20.0 only: another version keeps its own I/O until this is
re-checked against it (``tests/store/test_pymongo_io.py`` fails when upstream changes).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pymongo
from pymongo import _csot, pool_shared
from pymongo.asynchronous import pool
from pymongo.common import MAX_MESSAGE_SIZE
from pymongo.errors import ProtocolError, _OperationCancelled
from pymongo.message import _UNPACK_REPLY, _OpMsg
from pymongo.network_layer import AsyncNetworkingInterface, PyMongoProtocol
from pymongo.pool_shared import _CancellationContext

PINNED_VERSION = "4.20.0"

_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    """Patch PyMongo's async connections once; False (nothing patched) on any version but the pinned one."""
    if pymongo.__version__ != PINNED_VERSION:
        return False
    if not _ORIGINALS:
        _ORIGINALS.update(
            receive=pool.async_receive_message,
            send=pool.async_sendall,
            connection=pool.AsyncConnection,
            connect=pool_shared._async_create_connection,
        )
        pool.async_receive_message = receive_message
        pool.async_sendall = send_all
        pool.AsyncConnection = ClosingOnCancel  # type: ignore[misc,assignment]
        pool_shared._async_create_connection = connect
    return True


async def connect(address: Any, options: Any) -> socket.socket:
    """``pool_shared._async_create_connection``, finished even if the caller is cancelled; then closed."""
    connecting = asyncio.ensure_future(_ORIGINALS["connect"](address, options))
    try:
        return await asyncio.shield(connecting)
    except asyncio.CancelledError:
        connecting.add_done_callback(pool_shared._close_late_socket)
        raise


async def receive_message(
    conn: pool.AsyncConnection, request_id: int | None, max_message_size: int = MAX_MESSAGE_SIZE
) -> _OpMsg:
    """One reply (``network_layer.async_receive_message``), read by this task under the operation's deadline."""
    if _csot.get_timeout():
        timeout: float | None = max(_csot.get_deadline() - time.monotonic(), 0)
    else:
        timeout = conn.conn.gettimeout or None
    try:
        async with asyncio.timeout(timeout):
            data, op_code = await conn.conn.get_conn.read(request_id, max_message_size)
    except TimeoutError as error:  # PyMongo turns it into NetworkTimeout, as it did the wait's
        raise TimeoutError("timed out") from error
    try:
        unpack_reply = _UNPACK_REPLY[op_code]
    except KeyError:
        raise ProtocolError(f"Got opcode {op_code!r} but expected {_UNPACK_REPLY.keys()!r}") from None
    return unpack_reply(data)


async def send_all(conn: PyMongoProtocol, buf: bytes) -> None:
    """``network_layer.async_sendall``: the transport takes the whole message at once, so nothing is timed."""
    await conn.write(buf)


class ClosingOnCancel(pool.AsyncConnection):
    """A connection whose cancellation closes its transport: a read waiting on it fails then."""

    def __init__(self, conn: AsyncNetworkingInterface, *args: Any) -> None:
        super().__init__(conn, *args)
        self.cancel_context = _ClosingContext(conn.get_conn)


class _ClosingContext(_CancellationContext):
    def __init__(self, protocol: PyMongoProtocol) -> None:
        super().__init__()
        self._protocol = protocol

    def cancel(self) -> None:
        if not self.cancelled:
            super().cancel()
            self._protocol.close(_OperationCancelled("operation cancelled"))
