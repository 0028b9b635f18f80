"""Refusal event latency to N WebSocket subscribers of a real `fieldsync serve`, the subscribers in their own
processes (as many as cores allow, so the clients do not measure their own queueing).

    python -m bench.subscriptions [--subscribers 100 1000] [--events 10] [--processes 4]

Three figures per delivery, in ms:

- latency (``p50_ms``...): from the moment the server decided the refusal (the event's `at`,
  stamped when the push was decided, before its transaction commits) to the moment each
  subscriber's process had the whole frame: it holds the push's own commit (the store's
  transaction, ~20-30 ms on the embedded store) as well as the fan-out;
- after the answer (``after_answer_...``): from the moment the pushing device had the answer
  to its push (the commit is behind it; the event is published in-process on commit, so a
  subscriber may have it first: negative) to each subscriber's receipt: what a dashboard
  lags behind the phone;
- fan-out (``fanout_...``): from an event's first delivery to each other one.

The subscribers are lean graphql-transport-ws clients (``bench.graphql_ws_subscriber``: a
real WebSocket on an asyncio Protocol, each message timestamped when its last byte is in the
process): a general client's own CPU per message (60-120 µs for ``websockets``) on the two
cores the server writes from was most of what the fan-out used to measure.

Each N runs three times: every subscriber asking the same thing with one token (one shared
execution); the same with a token each, all of one manager (one execution for their audience);
then each with its own variables (one execution each). Prints one JSON line per run, with the
CPU ms per event of the server process and of the subscriber processes (from /proc), from
the same run (each event's second holds the connections' keep-alive too).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import uvloop

from bench.graphql_ws_subscriber import subscribe
from bench.harness import report

ADMIN = "bench-admin-token"
SUBSCRIPTION = "subscription{ refusalEvents{ type at refusal{ id code reason offlineId } } }"


def start_server(port: int) -> subprocess.Popen[bytes]:
    # One admin token opens every dashboard connection here: lift the per-token rate limit.
    env = {**os.environ, "FIELDSYNC_ADMIN_TOKEN": ADMIN, "FIELDSYNC_RATE_LIMIT_PER_MINUTE": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--memory", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- a subscriber process ---------------------------------------------------


async def subscriber(
    port: int, token: str, events: int, arrivals: list[tuple[str, float]], opening: asyncio.Semaphore, variables: dict
) -> None:
    def on_next(payload: dict, arrived: float) -> None:
        arrivals.append((payload["data"]["refusalEvents"]["at"], arrived))

    for attempt in range(5):  # a busy server may reset a connection while a thousand open at once
        try:
            async with opening:
                subscribed = await subscribe(
                    "127.0.0.1", port, token, {"query": SUBSCRIPTION, "variables": variables}, events, on_next
                )
            break
        except (OSError, ConnectionError):
            if attempt == 4:
                raise
            await asyncio.sleep(1 + attempt)
    await subscribed.done


async def worker(port: int, count: int, events: int, distinct: bool, tokens: list[str]) -> None:
    # A subscriber process lives for one run: the pauses of its cycle collector (tens of ms once it holds
    # hundreds of connections) would be measured as the server's latency. Reference counting frees the rest.
    gc.disable()
    arrivals: list[tuple[str, float]] = []
    opening = asyncio.Semaphore(20)
    # distinct: each subscriber's variables differ (unused by the query), so none shares another's execution;
    # tokens: each its own (one manager's), the same audience: one execution for all again
    tasks = [
        asyncio.create_task(
            subscriber(
                port,
                tokens[i] if tokens else ADMIN,
                events,
                arrivals,
                opening,
                {"me": f"{os.getpid()}-{i}"} if distinct else {},
            )
        )
        for i in range(count)
    ]
    print("started", flush=True)
    await asyncio.gather(*tasks)
    print(json.dumps(arrivals), flush=True)


# -- the driver ---------------------------------------------------------------


def run(
    distinct: bool,
    tokens: list[str],
    port: int,
    server_pid: int,
    subscribers: int,
    events: int,
    processes: int,
    device_token: str,
    offset: int,
) -> None:
    shares = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    starts = [sum(shares[:i]) for i in range(processes)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.subscriptions",
                "--worker",
                str(share),
                "--port",
                str(port),
                "--events",
                str(events),
                *(["--distinct"] if distinct else []),
                *(["--tokens", ",".join(tokens[start : start + share])] if tokens else []),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for share, start in zip(shares, starts, strict=True)
        if share
    ]
    for process in workers:
        assert process.stdout is not None and process.stdout.readline().strip() == "started"
    deadline = time.monotonic() + 300
    while f"fieldsync_subscribers {subscribers}\n" not in httpx.get(f"http://127.0.0.1:{port}/metrics").text:
        assert time.monotonic() < deadline, "subscribers did not all subscribe"
        time.sleep(0.1)
    server_cpu = cpu_seconds(server_pid)
    client_cpu = sum(cpu_seconds(p.pid) for p in workers)
    answered: list[float] = []  # when the pushing device had each push's answer
    for n in range(events):
        change = {
            "offlineId": f"bad-{offset}-{n}",
            "recordType": "VISIT",
            "recordId": f"v-{offset}-{n}",
            "operation": "UPSERT",
            "capturedAt": "2026-11-20T09:00:00+08:00",
            # refused with ACKNOWLEDGE (a malformed plannedAt): it does not block the next one
            "fields": {"outletId": "missing", "status": "PLANNED", "plannedAt": "not a time"},
        }
        gql(
            port,
            "mutation($i: PushInput!){pushChanges(input:$i){syncId}}",
            {"i": {"deviceId": "bench-device", "changes": [change]}},
            device_token,
        )
        answered.append(time.time())
        time.sleep(1.0)  # one event at a time: each fan-out is measured alone
    server_cpu = cpu_seconds(server_pid) - server_cpu
    client_cpu = sum(cpu_seconds(p.pid) for p in workers) - client_cpu
    arrivals: list[tuple[str, float]] = []
    for process in workers:
        out, _ = process.communicate(timeout=120)
        arrivals += [tuple(a) for a in json.loads(out.strip().splitlines()[-1])]
    first: dict[str, float] = {}
    for at, arrived in arrivals:
        first[at] = min(first.get(at, arrived), arrived)
    # from the decision (before the push's transaction commits) to each subscriber's process
    ordered = sorted((arrived - datetime.fromisoformat(at).timestamp()) * 1000 for at, arrived in arrivals)
    # from the pushing device's answer (the n-th event answered n-th: one push at a time) to each subscriber
    answer_of = dict(zip(sorted(first, key=datetime.fromisoformat), answered, strict=True))
    after_answer = sorted((arrived - answer_of[at]) * 1000 for at, arrived in arrivals)
    # the fan-out alone: from the event's first delivery to each of the others
    spread = sorted((arrived - first[at]) * 1000 for at, arrived in arrivals)
    report(
        "subscriptions.refusal_latency",
        subscribers=subscribers,
        shared_execution=not distinct,
        tokens=len(tokens) or 1,
        processes=len(workers),
        events=events,
        deliveries=len(ordered),
        p50_ms=round(statistics.median(ordered), 1),
        p99_ms=round(_p99(ordered), 1),
        max_ms=round(ordered[-1], 1),
        after_answer_p50_ms=round(statistics.median(after_answer), 1),
        after_answer_p99_ms=round(_p99(after_answer), 1),
        fanout_p50_ms=round(statistics.median(spread), 1),
        fanout_p99_ms=round(_p99(spread), 1),
        server_cpu_ms_per_event=round(server_cpu * 1000 / events, 1),
        subscriber_cpu_ms_per_event=round(client_cpu * 1000 / events, 1),
    )


def _p99(ordered: list[float]) -> float:
    return ordered[max(0, int(len(ordered) * 0.99) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--distinct", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * max(args.subscribers) + 256)), hard))
    if args.worker:
        uvloop.run(worker(args.port, args.worker, args.events, args.distinct, [t for t in args.tokens.split(",") if t]))
        return
    server = start_server(args.port)
    try:
        rep = gql(args.port, 'mutation{createUser(input:{name:"Bench", role:REP}){token}}')["createUser"]["token"]
        device = gql(
            args.port,
            'mutation{registerDevice(input:{deviceId:"bench-device", name:"b", platform:"x"}){token}}',
            token=rep,
        )["registerDevice"]["token"]
        manager = gql(args.port, 'mutation{createUser(input:{name:"Wall", role:MANAGER}){user{id}}}')["createUser"]
        issue = "mutation($u: ID!){issueToken(userId:$u){token}}"
        offset = itertools.count()
        for count in args.subscribers:
            # one token, one execution; then each its own token (a wall of screens signed in apart), one execution
            # for their audience; then one execution each: the ratios from the same run
            tokens = [gql(args.port, issue, {"u": manager["user"]["id"]})["issueToken"]["token"] for _ in range(count)]
            for distinct, own in ((False, []), (False, tokens), (True, [])):
                run(distinct, own, args.port, server.pid, count, args.events, args.processes, device, next(offset))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
