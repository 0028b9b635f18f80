"""Photos never hold records back: while five phones upload 20 MB photos, a rep's push of 50
orders is answered within 1.5x of the same push on an idle server, both measured in one run.
Each phone sends 1 MB PATCHes at the upload budget's default rate (2 MB/s, 10 MB/s in all)
from its first byte.

Each round pauses the five phones (SIGSTOP), waits until the server has stored what they had
sent and is idle, pushes, lets the phones go on, and pushes again while they send: the two
pushes of a round see the same machine (which other work shares). Medians over the rounds,
so one slow moment does not decide it; when a series misses, a second one with new uploads
is taken before deciding (other work on the machine only ever slows a series down)."""

from __future__ import annotations

import signal
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Server, store_pid
from tests.e2e.phones import start_phone, wait_until_idle
from tests.e2e.test_tus_clients import photo

MB = 1024 * 1024
PHONES = 5
ROUNDS = 7  # at most; each: a push with the phones paused and the server idle, then one while they send


def orders(count: int = 50) -> list[dict[str, Any]]:
    fields = {"outletId": "outlet-1", "status": "SUBMITTED", "lines": [{"productId": "p-1", "quantity": 6}]}
    return [
        {
            "offlineId": str(uuid.uuid4()),
            "recordType": "ORDER",
            "recordId": str(uuid.uuid4()),
            "operation": "UPSERT",
            "capturedAt": "2026-11-20T09:00:00+08:00",
            "fields": fields,
        }
        for _ in range(count)
    ]


def phone(server: Server) -> tuple[str, str, str]:
    """A new rep's phone: the rep's id, the device's token and id."""
    rep = server.data(
        "mutation($i: CreateUserInput!){createUser(input:$i){user{id} token}}",
        {"i": {"name": f"Rep {uuid.uuid4().hex[:6]}", "role": "REP"}},
    )["createUser"]
    device_id = f"phone-{uuid.uuid4().hex[:8]}"
    token = server.data(
        "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
        {"i": {"deviceId": device_id, "name": "Phone", "platform": "android", "appVersion": "1"}},
        rep["token"],
    )["registerDevice"]["token"]
    return rep["user"]["id"], token, device_id


def push_seconds(server: Server, token: str, device_id: str) -> float:
    started = time.perf_counter()
    pushed = server.data(
        "mutation($i: PushInput!){ pushChanges(input:$i){ results{ status } } }",
        {"i": {"deviceId": device_id, "changes": orders()}},
        token,
    )
    assert {r["status"] for r in pushed["pushChanges"]["results"]} == {"APPLIED"}
    return time.perf_counter() - started


def offset(server: Server, token: str, attachment_id: str) -> int | None:
    """How many bytes of the upload the server has; None before the phone has created it."""
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    response = httpx.head(f"{server.url}/files/{attachment_id}", headers=headers)
    return int(response.headers["Upload-Offset"]) if response.status_code == 200 else None


def test_a_push_of_50_orders_during_five_20_mb_uploads_takes_at_most_1_5x_its_idle_time(serve, tmp_path: Path):
    server = serve("--memory", FIELDSYNC_UPLOAD_BURST_BYTES=str(MB))  # each phone at the default 2 MB/s from the start
    assert server.process is not None
    rep_id, token, device_id = phone(server)
    write = "mutation($i: WriteRecordInput!){ writeRecord(input:$i){ status } }"
    outlet = {"name": "Kedai Ali", "repIds": [rep_id]}
    server.data(write, {"i": {"recordType": "OUTLET", "recordId": "outlet-1", "fields": outlet}})
    product = {"sku": "M1", "name": "Milo", "unitPrice": 2}
    server.data(write, {"i": {"recordType": "PRODUCT", "recordId": "p-1", "fields": product}})
    push_seconds(server, token, device_id)  # warm: the first push prepares its operation
    series = [pushes_beside_uploads(server, token, device_id, tmp_path / "first")]
    if ratio(*series[0]) > 1.5:  # the machine is shared with other work: a second series, new uploads, decides
        series.append(pushes_beside_uploads(server, token, device_id, tmp_path / "second"))
    assert min(ratio(*pushes) for pushes in series) <= 1.5, [
        f"alone {alone}, during uploads {during}: {ratio(alone, during):.2f}x" for alone, during in series
    ]


def ratio(alone: list[float], during: list[float]) -> float:
    return statistics.median(during) / statistics.median(alone)


def pushes_beside_uploads(server: Server, token: str, device_id: str, folder: Path) -> tuple[list[float], list[float]]:
    """Five new phones each upload a 20 MB photo; the push's seconds with them paused and while they send."""
    assert server.process is not None
    folder.mkdir()
    senders = []
    for n in range(PHONES):
        path = folder / f"shelf-{n}.jpg"
        path.write_bytes(photo(20 * MB))
        senders.append((str(path), phone(server)[1], f"shelf-{n}-{uuid.uuid4().hex[:8]}"))
    phones = [(start_phone(server.url, t, p, a, server.env), t, a) for p, t, a in senders]
    serving = [server.process.pid, store_pid(server)]
    alone: list[float] = []
    during: list[float] = []
    try:
        while None in [offset(server, t, a) for _, t, a in phones]:  # until every phone is sending
            assert all(p.poll() is None for p, _, _ in phones)
            time.sleep(0.1)
        while all(p.poll() is None for p, _, _ in phones) and len(during) < ROUNDS:
            for process, _, _ in phones:
                process.send_signal(signal.SIGSTOP)
            wait_until_idle(serving)
            alone.append(push_seconds(server, token, device_id))
            for process, _, _ in phones:
                process.send_signal(signal.SIGCONT)
            time.sleep(0.5)
            seconds = push_seconds(server, token, device_id)
            if all(p.poll() is None for p, _, _ in phones):  # no upload ended meanwhile
                during.append(seconds)
    finally:
        for process, _, _ in phones:
            process.send_signal(signal.SIGCONT)
            assert process.wait(timeout=300) == 0

    assert all(offset(server, t, a) == 20 * MB for _, t, a in phones)
    assert len(during) >= 3, during
    return alone, during
