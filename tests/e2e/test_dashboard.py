"""The Sync Health page in a real headless Chromium: reasons shown, and a new refusal appears live."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.conftest import ADMIN, Server, free_port
from tests.e2e.test_live_refusals import PUSH, queue, rep_device

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


class Page:
    """A browser tab driven over the DevTools protocol."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        await self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self._socket.recv())
            if message.get("id") == call_id:
                return message.get("result", {})

    async def value(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float = 15) -> Any:
        """Poll a JavaScript expression until it is truthy (the page updates itself asynchronously)."""
        for _ in range(int(timeout / 0.1)):
            if value := await self.value(expression):
                return value
            await asyncio.sleep(0.1)
        raise TimeoutError(expression)


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    port = free_port()
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        targets: list[dict[str, Any]] = []
        for _ in range(100):
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json", timeout=1).json()
                if any(t["type"] == "page" for t in targets):
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with connect(url, max_size=None) as socket:
            yield Page(socket)
    finally:
        browser.terminate()
        browser.wait(timeout=10)


async def test_a_manager_sees_the_reason_and_a_new_refusal_arrives_live(serve, page: Page, tmp_path: Path):
    server: Server = serve("--memory")
    device = rep_device(server, "Ali", "dev1")
    first = await asyncio.to_thread(server.data, PUSH, {"i": {"deviceId": "dev1", "changes": queue()[:1]}}, device)
    assert first["pushChanges"]["results"][0]["status"] == "REFUSED"

    await page.call("Page.navigate", url=f"{server.url}/console/")
    await page.until("document.readyState === 'complete'")
    await page.value(f"sessionStorage.setItem('fieldsync-token', '{ADMIN}'); location.reload(); true")
    await page.until("document.getElementById('live').textContent === 'live'")
    rows = await page.until("document.querySelectorAll('tbody tr').length")
    assert rows == 1
    text = await page.value("document.getElementById('reps').innerText")
    assert "Ali" in text and "OUTLET_NOT_FOUND" in text and "kedai-ali, which does not exist" in text

    # Another rep's phone syncs a change the server refuses: the open page shows it without a reload.
    other = rep_device(server, "Siti", "dev2")
    await asyncio.to_thread(server.data, PUSH, {"i": {"deviceId": "dev2", "changes": queue()[:1]}}, other)
    await page.until("document.querySelectorAll('tbody tr').length === 2")
    shot = await page.call("Page.captureScreenshot", format="png")
    (tmp_path / "dashboard.png").write_bytes(base64.b64decode(shot["data"]))
