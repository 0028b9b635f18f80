"""Refusal event latency to N WebSocket subscribers of a real `fieldsync serve`.

    python -m bench.subscriptions [--subscribers 100 1000] [--events 5]

Latency is measured from the moment the server decided the refusal (the
event's `at`, stamped when the push was decided) to the moment each
subscriber received it. Prints one JSON line per N with p50/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime

import httpx
from websockets.asyncio.client import connect

from bench.harness import report

ADMIN = "bench-admin-token"
SUBSCRIPTION = "subscription{ refusalEvents{ type at refusal{ id } } }"


def start_server(port: int) -> subprocess.Popen[bytes]:
    # One admin token opens every dashboard connection here: lift the per-token rate limit.
    env = {**os.environ, "FIELDSYNC_ADMIN_TOKEN": ADMIN, "FIELDSYNC_RATE_LIMIT_PER_MINUTE": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--memory", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError("server did not start")


def gql(port: int, query: str, variables: dict | None = None, token: str = ADMIN) -> dict:
    response = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def subscriber(port: int, ready: asyncio.Queue[None], latencies: list[float], events: int) -> None:
    async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"], max_queue=None) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {ADMIN}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
        await ready.put(None)
        received = 0
        while received < events:
            message = json.loads(await ws.recv())
            if message.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            arrived = time.time()
            decided = datetime.fromisoformat(message["payload"]["data"]["refusalEvents"]["at"]).timestamp()
            latencies.append((arrived - decided) * 1000)
            received += 1


async def run(port: int, subscribers: int, events: int, device_token: str, offset: int) -> None:
    ready: asyncio.Queue[None] = asyncio.Queue()
    latencies: list[float] = []
    tasks = [asyncio.create_task(subscriber(port, ready, latencies, events)) for _ in range(subscribers)]
    for _ in range(subscribers):
        await asyncio.wait_for(ready.get(), 60)
    while f"fieldsync_subscribers {subscribers}" not in httpx.get(f"http://127.0.0.1:{port}/metrics").text:
        await asyncio.sleep(0.05)
    for n in range(events):
        change = {
            "offlineId": f"bad-{offset}-{n}",
            "recordType": "VISIT",
            "recordId": f"v-{offset}-{n}",
            "operation": "UPSERT",
            "capturedAt": "2026-11-20T09:00:00+08:00",
            "fields": {"outletId": "missing", "status": "PLANNED"},
        }
        # Each refusal is acknowledged-type so it does not block the next one.
        change["fields"]["plannedAt"] = "not a time"
        await asyncio.to_thread(
            gql,
            port,
            "mutation($i: PushInput!){pushChanges(input:$i){syncId}}",
            {"i": {"deviceId": "bench-device", "changes": [change]}},
            device_token,
        )
        while len(latencies) < subscribers * (n + 1):
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    ordered = sorted(latencies)
    report(
        "subscriptions.refusal_latency",
        subscribers=subscribers,
        events=events,
        deliveries=len(ordered),
        p50_ms=round(statistics.median(ordered), 1),
        p99_ms=round(ordered[int(len(ordered) * 0.99) - 1], 1),
        max_ms=round(ordered[-1], 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * max(args.subscribers) + 256)), hard))
    server = start_server(args.port)
    try:
        rep = gql(args.port, 'mutation{createUser(input:{name:"Bench", role:REP}){token}}')["createUser"]["token"]
        device = gql(
            args.port,
            'mutation{registerDevice(input:{deviceId:"bench-device", name:"b", platform:"x"}){token}}',
            token=rep,
        )["registerDevice"]["token"]
        for index, count in enumerate(args.subscribers):
            asyncio.run(run(args.port, count, args.events, device, index))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
