"""A TCP proxy that plays a bad mobile link between a tus client and the server.

``cut_after``: the connection is closed once that many request bytes went upstream
(the phone lost its signal mid-body). ``flip_at``: that byte of the request stream is
corrupted on the way (what checksums exist for). Counted per connection; each strikes once, on the
first connection long enough, and later connections pass through untouched.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class FlakyLink:
    upstream_port: int
    cut_after: int | None = None
    flip_at: int | None = None
    port: int = 0
    _listener: socket.socket = field(init=False)
    struck: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._forward, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._back, args=(upstream, client), daemon=True).start()

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        sent = 0
        try:
            while data := client.recv(65536):
                if not self.struck and self.cut_after is not None and sent + len(data) >= self.cut_after:
                    self.struck = True
                    upstream.sendall(data[: self.cut_after - sent])
                    break
                if not self.struck and self.flip_at is not None and sent <= self.flip_at < sent + len(data):
                    self.struck = True
                    at = self.flip_at - sent
                    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
                upstream.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for end in (client, upstream):
                _close(end)

    def _back(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        finally:
            for end in (client, upstream):
                _close(end)


def _close(end: socket.socket) -> None:
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()
