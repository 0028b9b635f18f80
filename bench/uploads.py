"""Photo channel: tus uploads into GridFS through a real `fieldsync serve` (embedded store, in memory).

For 1, 10 and 100 MB files (tuspy, 8 MB PATCHes): MB/s, service CPU per MB and store CPU
per MB (both read from /proc), beside a raw GridFS write of the same bytes with PyMongo
(AsyncGridFSBucket, 64 KB writes) to its own embedded store; the service's peak RSS after
each size (flat: memory does not grow with file size). Then a push of 50 orders, alone and
while five 20 MB photos upload from five phones (tuspy processes, ``tests/e2e/phones.py``;
for each alone-push they are paused with SIGSTOP and the servers left to go idle, so both
pushes of a round see the same machine load), as a ratio; and the same with the photos sent
to another server process (control): what the uploads' CPU costs the machine, whichever
server receives them.

    .venv/bin/python -m bench.uploads
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient
from tusclient import client as tus

from bench.harness import report
from service.store.embedded import start_embedded_store
from tests.e2e.phones import cpu_seconds, start_phone, wait_until_idle

ADMIN = "bench-admin"
MB = 1024 * 1024
SIZES_MB = (1, 10, 100)
PATCH_BYTES = 8 * MB
ORDERS = 50


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def photo(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(size - 11)


class Service:
    def __init__(self, **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
        environ.update(FIELDSYNC_ADMIN_TOKEN=ADMIN, **env)
        command = [sys.executable, "-m", "service.cli", "serve", "--memory", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.store_pid = int(Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()[0])

    def data(self, query: str, variables: dict[str, Any] | None = None, token: str = ADMIN) -> dict[str, Any]:
        body = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        ).json()
        assert not body.get("errors"), body
        return body["data"]

    def device(self) -> tuple[str, str, str]:
        """A new rep's phone: its token, device id and the rep's id."""
        rep = self.data(
            f'mutation{{createUser(input:{{name:"R{uuid.uuid4().hex[:6]}", role:REP}}){{user{{id}} token}}}}'
        )
        device_id = f"phone-{uuid.uuid4().hex[:8]}"
        token = self.data(
            "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
            {"i": {"deviceId": device_id, "name": "Phone", "platform": "android", "appVersion": "1"}},
            rep["createUser"]["token"],
        )["registerDevice"]["token"]
        return token, device_id, rep["createUser"]["user"]["id"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def upload_file(base: str, token: str, path: str) -> None:
    tus_client = tus.TusClient(f"{base}/files/", headers={"Authorization": f"Bearer {token}"})
    tus_client.uploader(path, chunk_size=PATCH_BYTES).upload()


async def raw_gridfs(data: bytes) -> tuple[float, float, float]:
    """Seconds, this process's CPU and the store's CPU for one GridFS write of ``data``."""
    embedded = start_embedded_store(None)
    client: AsyncMongoClient = AsyncMongoClient(embedded.uri)
    try:
        bucket = AsyncGridFSBucket(client["raw"], bucket_name="attachments")
        store_before, own_before, started = cpu_seconds(embedded.process.pid), time.process_time(), time.perf_counter()
        target = bucket.open_upload_stream("photo.jpg")
        for at in range(0, len(data), 64 * 1024):
            await target.write(data[at : at + 64 * 1024])
        await target.close()
        return (
            time.perf_counter() - started,
            time.process_time() - own_before,
            cpu_seconds(embedded.process.pid) - store_before,
        )
    finally:
        await client.close()
        embedded.stop()


def throughput(folder: Path) -> None:
    service = Service(FIELDSYNC_UPLOAD_MAX_BYTES=str(200 * MB), FIELDSYNC_UPLOAD_BYTES_PER_MINUTE="0")
    try:
        token, _, _ = service.device()
        for size_mb in SIZES_MB:
            data = photo(size_mb * MB)
            path = folder / f"{size_mb}.jpg"
            path.write_bytes(data)
            cpu, store, started = cpu_seconds(service.process.pid), cpu_seconds(service.store_pid), time.perf_counter()
            upload_file(service.url, token, str(path))
            seconds = time.perf_counter() - started
            cpu, store = cpu_seconds(service.process.pid) - cpu, cpu_seconds(service.store_pid) - store
            raw_seconds, raw_cpu, raw_store = asyncio.run(raw_gridfs(data))
            report(
                "uploads",
                size_mb=size_mb,
                mb_per_s=round(size_mb / seconds, 2),
                service_cpu_ms_per_mb=round(cpu * 1000 / size_mb, 1),
                store_cpu_ms_per_mb=round(store * 1000 / size_mb, 1),
                raw_gridfs_mb_per_s=round(size_mb / raw_seconds, 2),
                raw_client_cpu_ms_per_mb=round(raw_cpu * 1000 / size_mb, 1),
                raw_store_cpu_ms_per_mb=round(raw_store * 1000 / size_mb, 1),
                ratio_seconds_to_raw=round(seconds / raw_seconds, 2),
                service_peak_rss_mb=round(peak_rss_mb(service.process.pid), 1),
            )
    finally:
        service.stop()


def push_orders(service: Service, token: str, device_id: str) -> float:
    changes = [
        {
            "offlineId": str(uuid.uuid4()),
            "recordType": "ORDER",
            "recordId": str(uuid.uuid4()),
            "operation": "UPSERT",
            "capturedAt": "2026-11-20T09:00:00+08:00",
            "fields": {"outletId": "outlet-1", "status": "SUBMITTED", "lines": [{"productId": "p-1", "quantity": 6}]},
        }
        for _ in range(ORDERS)
    ]
    started = time.perf_counter()
    service.data(
        "mutation($i: PushInput!){ pushChanges(input:$i){ results{ status } } }",
        {"i": {"deviceId": device_id, "changes": changes}},
        token,
    )
    return time.perf_counter() - started


def push_while_uploading(folder: Path, *, control: bool, rounds: int = 5) -> None:
    service = Service()  # default budget: 2 MB/s per phone
    receiver = Service() if control else service  # control: the photos go to another server process
    try:
        token, device_id, rep_id = service.device()
        write = "mutation($i: WriteRecordInput!){ writeRecord(input:$i){ status } }"
        outlet = {"name": "Kedai Ali", "repIds": [rep_id]}
        service.data(write, {"i": {"recordType": "OUTLET", "recordId": "outlet-1", "fields": outlet}})
        product = {"sku": "M1", "name": "Milo", "unitPrice": 2}
        service.data(write, {"i": {"recordType": "PRODUCT", "recordId": "p-1", "fields": product}})
        push_orders(service, token, device_id)
        phones = []
        for index in range(5):
            path = folder / f"phone-{index}.jpg"
            path.write_bytes(photo(20 * MB))
            phones.append((receiver.url, receiver.device()[0], str(path), f"phone-{index}-{uuid.uuid4().hex[:8]}"))
        environ = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
        uploads = [start_phone(*phone, environ) for phone in phones]
        time.sleep(2)
        serving = [receiver.process.pid, receiver.store_pid, service.process.pid, service.store_pid]
        alone, busy = [], []
        for _ in range(rounds):
            for upload in uploads:
                upload.send_signal(signal.SIGSTOP)
            wait_until_idle(serving)
            alone.append(push_orders(service, token, device_id))
            for upload in uploads:
                upload.send_signal(signal.SIGCONT)
            time.sleep(0.5)
            seconds = push_orders(service, token, device_id)
            if all(upload.poll() is None for upload in uploads):
                busy.append(seconds)
        for upload in uploads:
            upload.wait(timeout=600)
        metrics = httpx.get(f"{service.url}/metrics").text
        waited = next(line for line in metrics.splitlines() if line.startswith("fieldsync_upload_wait_seconds"))
        report(
            "push_while_uploading_elsewhere" if control else "push_while_uploading",
            orders=ORDERS,
            uploads="5 x 20 MB",
            push_alone_s=round(statistics.median(alone), 3),
            push_during_uploads_s=round(statistics.median(busy), 3) if busy else None,
            ratio=round(statistics.median(busy) / statistics.median(alone), 2) if busy else None,
            measured_during_uploads=len(busy),
            upload_wait_seconds=round(float(waited.split()[1]), 1),
            uploads_ok=all(upload.returncode == 0 for upload in uploads),
        )
    finally:
        service.stop()
        if receiver is not service:
            receiver.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        throughput(Path(folder))
        push_while_uploading(Path(folder), control=False)
        push_while_uploading(Path(folder), control=True)


if __name__ == "__main__":
    main()
