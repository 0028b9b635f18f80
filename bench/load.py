"""Many phones at once on the default store: 50 devices pushing batches of 20 concurrently.

    python -m bench.load [--devices 50] [--seconds 60] [--batch 20] [--instances 1,2]

Starts ``fieldsync serve --data-dir`` (SQLite, as ``make run``), and for two instances a
second ``serve`` on the same embedded store. Then, per instance count: one device alone
pushes for ``--seconds`` / 3 (the baseline), then ``--devices`` devices push for
``--seconds`` (spread over the instances), while one device pulls in a loop and 50
WebSocket subscribers follow ``syncStatus``. Prints one JSON line per run: push latency
p50/p99/max, errors by kind, throughput and its ratio to the lone device's, pulls done
(p50 and max),
status events received, CPU of every process (cores used, ms per change, from
``/proc``) and its RSS. The machine is shared: compare
the ratios taken within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench.scale import ADMIN, Serve, cpu_seconds, rss_mb

PUSH = "mutation($i: PushInput!){pushChanges(input:$i){results{status}}}"
PULL = "query($d: ID!, $s: String){pull(deviceId:$d, since:$s, limit:200){cursor hasMore}}"
STATUS = "subscription{syncStatus{device{id} status}}"
OUTLET = 'mutation($f: JSON!){writeRecord(input:{recordType:OUTLET, recordId:"load-o", fields:$f}){status}}'
REGISTER = 'mutation($d: ID!){registerDevice(input:{deviceId:$d, name:"P", platform:"android"}){token}}'
TIMEOUT = 30.0


class Fleet:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.changes = 0
        self.pull_latencies: list[float] = []
        self.events = 0
        self.run = uuid.uuid4().hex[:8]  # offline and record ids of this run's changes are new

    async def call(self, client: httpx.AsyncClient, url: str, query: str, variables: dict, token: str) -> Any:
        response = await client.post(
            f"{url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"{response.status_code} {body['errors'][0].get('extensions', {}).get('code')}")
        return body["data"]

    async def device(self, client: httpx.AsyncClient, n: int, token: str, batch: int, until: float) -> None:
        url, sent = self.urls[n % len(self.urls)], 0
        while time.monotonic() < until:
            changes = [
                {
                    "offlineId": f"load-{self.run}-{n}-{sent + i}",
                    "recordType": "VISIT",
                    "recordId": f"load-{self.run}-{n}-{sent + i}",
                    "operation": "UPSERT",
                    "capturedAt": "2026-11-20T09:00:00+08:00",
                    "fields": {"outletId": "load-o", "status": "PLANNED"},
                }
                for i in range(batch)
            ]
            started = time.monotonic()
            try:
                pushed = await self.call(
                    client, url, PUSH, {"i": {"deviceId": f"load-d{n}", "changes": changes}}, token
                )
                for result in pushed["pushChanges"]["results"]:
                    # A push that timed out is sent again, as a phone does: what it committed comes back DUPLICATE.
                    if result["status"] not in ("APPLIED", "DUPLICATE"):
                        raise RuntimeError(f"not applied: {result['status']}")
            except httpx.TimeoutException:
                self.errors["client timeout"] += 1
            except (httpx.HTTPError, RuntimeError, ValueError) as error:
                self.errors[str(error)[:60] or type(error).__name__] += 1
            else:
                self.latencies.append(time.monotonic() - started)
                self.changes += batch
                sent += batch

    async def puller(self, client: httpx.AsyncClient, token: str, until: float) -> None:
        cursor = None
        while time.monotonic() < until:
            started = time.monotonic()
            try:
                page = (await self.call(client, self.urls[0], PULL, {"d": "load-d0", "s": cursor}, token))["pull"]
            except (httpx.HTTPError, RuntimeError, ValueError) as error:
                self.errors[f"pull {str(error)[:50] or type(error).__name__}"] += 1
            else:
                cursor = page["cursor"]
                self.pull_latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.5)

    async def subscriber(self, n: int, until: float) -> None:
        url = self.urls[n % len(self.urls)].replace("http", "ws", 1) + "/graphql"
        try:
            async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
                hello = {"type": "connection_init", "payload": {"authorization": f"Bearer {ADMIN}"}}
                await socket.send(json.dumps(hello))
                await socket.recv()
                await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": STATUS}}))
                while (left := until - time.monotonic()) > 0:
                    with contextlib.suppress(TimeoutError):
                        message = json.loads(await asyncio.wait_for(socket.recv(), left))
                        if message.get("type") == "ping":
                            await socket.send(json.dumps({"type": "pong"}))
                        elif message.get("type") == "next":
                            self.events += 1
                        elif message.get("type") in ("error", "complete"):
                            self.errors[f"subscription {message['type']}"] += 1
                            return
        except Exception as error:  # a subscriber that could not follow counts as an error
            self.errors[f"subscriber {type(error).__name__}"] += 1


async def run(
    urls: list[str], tokens: list[str], devices: int, batch: int, seconds: float, crowd: bool, pids: dict[str, int]
) -> dict:
    fleet = Fleet(urls)
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=devices + 10)
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:
        tasks = [fleet.device(client, n, tokens[n], batch, until) for n in range(devices)]
        if crowd:
            tasks += [fleet.puller(client, tokens[0], until), *(fleet.subscriber(n, until) for n in range(50))]
        started = time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    latencies, pulls = sorted(fleet.latencies), sorted(fleet.pull_latencies)
    return {
        "devices": devices,
        "pushes": len(latencies),
        "changes_per_s": round(fleet.changes / elapsed, 1),
        "push_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "push_p99_s": round(latencies[max(0, math.ceil(len(latencies) * 0.99) - 1)], 2) if latencies else None,
        "push_max_s": round(latencies[-1], 2) if latencies else None,
        "errors": dict(fleet.errors),
        "pulls": len(pulls),
        "pull_p50_s": round(statistics.median(pulls), 2) if pulls else None,
        "pull_max_s": round(pulls[-1], 2) if pulls else None,
        "status_events": fleet.events,
        "cpu_cores": {name: round(seconds / elapsed, 2) for name, seconds in cpu.items()},
        "cpu_ms_per_change": {name: round(1000 * seconds / max(fleet.changes, 1), 2) for name, seconds in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--instances", default="1,2")
    args = parser.parse_args()
    for instances in (int(n) for n in args.instances.split(",")):
        with tempfile.TemporaryDirectory(prefix="fieldsync-load-") as tmp:
            first = Serve("sqlite", Path(tmp))
            servers = [first]
            try:
                if instances > 1:
                    servers.append(Serve("sqlite", Path(tmp) / "second", uri=first.uri))
                tokens, reps = [], []
                for n in range(args.devices):
                    rep = first.call(f'mutation{{createUser(input:{{name:"R{n}", role:REP}}){{user{{id}} token}}}}')
                    device = first.call(REGISTER, {"d": f"load-d{n}"}, rep["createUser"]["token"])
                    tokens.append(device["registerDevice"]["token"])
                    reps.append(rep["createUser"]["user"]["id"])
                first.call(OUTLET, {"f": {"name": "O", "repIds": reps}})  # every device may visit it
                urls = [server.url for server in servers]
                pids = {f"service{n}": s.process.pid for n, s in enumerate(servers)} | {"store": first.store_pid}
                alone = asyncio.run(run(urls[:1], tokens, 1, args.batch, args.seconds / 3, crowd=False, pids=pids))
                crowd = asyncio.run(run(urls, tokens, args.devices, args.batch, args.seconds, crowd=True, pids=pids))
                ratio = crowd["changes_per_s"] / alone["changes_per_s"] if alone["changes_per_s"] else None
                rss = {name: rss_mb(pid) for name, pid in pids.items()}
                print(json.dumps({"bench": "load.alone", "instances": instances, **alone}), flush=True)
                line = {"bench": "load", "instances": instances, **crowd, "throughput_vs_one_device": ratio}
                print(json.dumps({**line, "rss_mb": rss}), flush=True)
            finally:
                for server in reversed(servers):
                    server.stop()


if __name__ == "__main__":
    main()
