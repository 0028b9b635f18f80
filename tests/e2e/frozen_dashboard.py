"""A dashboard in its own process, to be frozen (SIGSTOP) and thawed by a test: a laptop lid closed mid-feed.

    python -m tests.e2e.frozen_dashboard <ws url> <token> <subscription>

Prints ``ready`` once subscribed; after the server closes the connection, prints one JSON line:
how many events it had received and the close code and reason.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from urllib.parse import urlparse

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def main(url: str, token: str, query: str) -> None:
    where = urlparse(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # what a frozen reader can hold
    sock.connect((where.hostname, where.port))
    received, code, reason = 0, None, None
    # no compression: each event takes its full size in the buffers, as from a client that cannot inflate
    async with connect(url, sock=sock, subprotocols=["graphql-transport-ws"], max_queue=1, compression=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        print("ready", flush=True)
        try:
            async for raw in ws:
                received += json.loads(raw).get("type") == "next"
        except ConnectionClosed:
            pass
        if ws.close_code is not None:
            code, reason = ws.close_code, ws.close_reason
    print(json.dumps({"received": received, "code": code, "reason": reason}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
