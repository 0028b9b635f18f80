"""Photos over tus with real clients (tuspy from PyPI, tus-js-client from npm run by Node.js)
against a real `fieldsync serve`: a rep on patchy 4G uploads shelf photos; the link drops, a
byte is corrupted, the server restarts, and every photo still arrives whole, stored once."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.uploader import Uploader

from tests.e2e.conftest import ADMIN, Server
from tests.e2e.flaky_link import FlakyLink

CHUNK = 256 * 1024


class Sha256Uploader(Uploader):
    """tuspy's checksum extension, with sha256 instead of its default sha1."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def photo(size: int) -> bytes:
    """Bytes that sniff as a JPEG (a JPEG header, then noise: every photo is different)."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(size - 11)


def device_token(server: Server) -> tuple[str, str]:
    rep = server.data(
        "mutation($i: CreateUserInput!){createUser(input:$i){user{id} token}}",
        {"i": {"name": f"Rep {uuid.uuid4().hex[:6]}", "role": "REP"}},
    )["createUser"]
    token = server.data(
        "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
        {"i": {"deviceId": f"phone-{uuid.uuid4().hex[:8]}", "name": "Phone", "platform": "ios", "appVersion": "1"}},
        rep["token"],
    )["registerDevice"]["token"]
    return rep["user"]["id"], token


def uploader(base: str, token: str, data: bytes, cls: type[Uploader] = Uploader, **options: Any) -> Uploader:
    tus_client = tus.TusClient(f"{base}/files/", headers={"Authorization": f"Bearer {token}"})
    return cls(client=tus_client, file_stream=io.BytesIO(data), metadata={"filename": "shelf.jpg"}, **options)


def offset(url: str, token: str) -> int:
    response = httpx.head(url, headers={"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"})
    assert response.status_code == 200, response.text
    return int(response.headers["Upload-Offset"])


def settled_offset(url: str, token: str, within: float = 10) -> int:
    """The offset once the server has taken in what arrived before a cut: the phone sees the link drop at
    once, while the server (a busy one) may still be writing the interrupted request's bytes."""
    deadline = time.monotonic() + within
    while not (kept := offset(url, token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return kept


def fetched(url: str, token: str) -> bytes:
    response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.content


def completions(server: Server) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/export/history.ndjson?action=UPLOAD_COMPLETED", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    return [json.loads(line)["detail"] for line in response.text.splitlines()]


def on(server: Server, url: str) -> str:
    """The same upload, addressed directly at the server rather than through a proxy."""
    return f"{server.url}/files/{url.rsplit('/', 1)[1]}"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One server for the tests that need no restart (each uses its own rep and device)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
    started = Server(
        ["--memory"], {**env, "FIELDSYNC_ADMIN_TOKEN": ADMIN, "PYTHONPATH": str(Path(__file__).parents[2])}
    )
    yield started.start()
    started.stop()


def test_a_photo_uploads_reads_back_and_the_same_photo_twice_is_stored_once(server: Server) -> None:
    _, token = device_token(server)
    data = photo(900 * 1024)
    first = uploader(server.url, token, data, chunk_size=CHUNK)
    first.upload()
    again = uploader(server.url, token, data)  # the app lost track and sends it once more, in one PATCH
    again.upload()
    assert first.url != again.url
    assert fetched(first.url, token) == data == fetched(again.url, token)
    digest = hashlib.sha256(data).hexdigest()
    done = [d for d in completions(server) if d["sha256"] == digest]
    assert [d["deduplicated"] for d in done] == [False, True]
    assert all(d["size"] == len(data) and d["durationMs"] >= 0 for d in done)


def test_a_dropped_connection_keeps_what_arrived_and_the_upload_resumes_from_the_servers_offset(
    server: Server,
) -> None:
    _, token = device_token(server)
    data = photo(1024 * 1024)
    link = FlakyLink(server.port, cut_after=600 * 1024)  # signal lost 600 KB into the body
    try:
        cut = uploader(link.url, token, data)
        with pytest.raises((TusUploadFailed, TusCommunicationError)):
            cut.upload()
    finally:
        link.close()
    url = on(server, cut.url)
    kept = settled_offset(url, token)
    assert 0 < kept < len(data)  # what arrived before the cut is kept
    resumed = uploader(server.url, token, data, url=url)  # a fresh process: HEAD, then PATCH from there
    assert resumed.offset == kept
    resumed.upload()
    assert fetched(url, token) == data


def test_a_corrupted_body_is_refused_by_its_sha256_checksum_and_sent_again(server: Server) -> None:
    _, token = device_token(server)
    data = photo(700 * 1024)
    link = FlakyLink(server.port, flip_at=100 * 1024)
    try:
        corrupted = uploader(link.url, token, data, cls=Sha256Uploader, upload_checksum=True, chunk_size=CHUNK)
        with pytest.raises(TusUploadFailed) as refused:
            corrupted.upload()
        assert refused.value.status_code == 460
    finally:
        link.close()
    url = on(server, corrupted.url)
    assert offset(url, token) % CHUNK == 0  # the corrupted PATCH left nothing behind
    retry = uploader(server.url, token, data, cls=Sha256Uploader, upload_checksum=True, url=url, chunk_size=CHUNK)
    retry.upload()
    assert fetched(url, token) == data


def test_an_upload_survives_a_server_restart_and_continues_from_the_last_byte_the_server_has(
    serve: Any, tmp_path: Any
) -> None:
    server = serve("--data-dir", str(tmp_path))
    _, token = device_token(server)
    data = photo(800 * 1024)
    first = uploader(server.url, token, data, chunk_size=CHUNK)
    first.upload(stop_at=2 * CHUNK)
    server.kill()  # SIGKILL: no goodbye
    server.start()
    resumed = uploader(server.url, token, data, url=first.url, chunk_size=CHUNK)
    assert resumed.offset == 2 * CHUNK
    resumed.upload()
    assert fetched(first.url, token) == data
    assert len(completions(server)) == 1


# -- tus-js-client (npm, run by Node.js) -------------------------------------------

JS_CLIENTS = Path(__file__).parents[1] / "js"


def tus_js(base: str, token: str, data: bytes, tmp_path: Path, **options: Any) -> dict[str, Any]:
    """One upload by tus-js-client, as a web or React Native app runs it."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    assert (JS_CLIENTS / "node_modules" / "tus-js-client").is_dir(), "run `make test` (it runs npm ci in tests/js)"
    path = tmp_path / f"{uuid.uuid4().hex}.jpg"
    path.write_bytes(data)
    done = subprocess.run(
        ["node", str(JS_CLIENTS / "tus_upload.mjs"), f"{base}/files/", token, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tus_js_client_uploads_with_creation_with_upload_and_a_known_photo_completes_at_once(
    server: Server, tmp_path: Path
) -> None:
    _, token = device_token(server)
    data = photo(600 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    first = tus_js(server.url, token, data, tmp_path, withData=True, chunkSize=CHUNK, attachmentId=f"js-{digest[:8]}")
    assert first["done"] and first["url"].endswith(f"/files/js-{digest[:8]}")
    assert fetched(first["url"], token) == data
    again = tus_js(server.url, token, data, tmp_path, withData=True, chunkSize=CHUNK, sha256=digest)
    assert again["done"] and fetched(again["url"], token) == data
    done = [d for d in completions(server) if d["sha256"] == digest]
    assert [d["deduplicated"] for d in done] == [False, True]


def test_tus_js_client_resumes_an_upload_cut_mid_body_from_the_servers_offset(server: Server, tmp_path: Path) -> None:
    _, token = device_token(server)
    data = photo(1024 * 1024)
    link = FlakyLink(server.port, cut_after=500 * 1024)
    try:
        cut = tus_js(link.url, token, data, tmp_path, noRetry=True)
    finally:
        link.close()
    assert not cut["done"] and cut["url"], cut
    url = on(server, cut["url"])
    kept = settled_offset(url, token)
    assert 0 < kept < len(data)
    resumed = tus_js(server.url, token, data, tmp_path, uploadUrl=url)  # the app starts again, from the server's offset
    assert resumed["done"], resumed
    assert fetched(url, token) == data
