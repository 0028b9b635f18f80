"""Phones as they really sync, many at once: the field-day simulator's reps, each in its own thread,
against one or two ``fieldsync serve`` instances on one embedded store (SQLite, as ``make run``).

    python -m bench.fleet [--phones 20 40] [--instances 1 2] [--seconds 60] [--every 15]
    python -m bench.fleet --soak [--phones 40] [--minutes 30]     # memory and latency drift

Every phone works (check-ins, visits completed with a shelf photo, orders, work-order hours,
shared outlet edits) and syncs every ``--every`` seconds, over the simulator's patchy network
(lost requests and answers, duplicate sends), with the default rate limits: a 429 to such an
honest phone is an error. A manager fixes refusals and edits records meanwhile. Each run
prints one JSON line: syncs and pushes per second, changes per second, push latency
p50/p99/max (the server's answer to each push request; a phone's retries are its own),
errors by kind (the server's 5xx and 429, real timeouts and connection failures; the
network's simulated faults are listed apart), RSS of every process at start and end, CPU
cores used per process (from /proc), and the simulator's ``--check`` invariants once the
day is settled. ``--soak`` prints a line per 5-minute window
(p99, RSS of each process) and the drift from the first window to the last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.scale import ADMIN, Serve, cpu_seconds, rss_mb
from fieldsync_client.simulator import Day, Rep, Simulation
from fieldsync_client.transport import Offline
from service.settings import Settings

DEFAULTS = Settings()
HONEST_LIMITS = {  # the defaults, which the other benches lift
    "FIELDSYNC_RATE_LIMIT_PER_MINUTE": str(DEFAULTS.rate_limit_per_minute),
    "FIELDSYNC_RATE_LIMIT_BURST": str(DEFAULTS.rate_limit_burst),
}


class Counting(httpx.BaseTransport):
    """Under the simulated network: what the server (or the real network) answered, by kind, and
    how long each push request took the server to answer (the phone's retries are its own)."""

    def __init__(self, inner: httpx.BaseTransport, fleet: Fleet) -> None:
        self.inner, self.fleet = inner, fleet

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
            response.read()
        except httpx.TimeoutException:
            self._count("timeout")
            raise
        except httpx.TransportError:
            self._count("connection failed")
            raise
        if response.status_code == 429 or response.status_code >= 500:
            self._count(f"HTTP {response.status_code}")
        elif b"pushChanges" in request.content:
            with self.fleet.lock:
                self.fleet.push_latencies.append(time.perf_counter() - started)
        return response

    def _count(self, kind: str) -> None:
        with self.fleet.lock:
            self.fleet.errors[kind] += 1

    def close(self) -> None:
        self.inner.close()


class Fleet:
    """The simulator's reps, each syncing on its own thread every ``every`` seconds, in real time."""

    def __init__(self, url: str, phones: int, every: float, seed: int = 1) -> None:
        self.lock = threading.RLock()  # the simulation's bookkeeping is one rep at a time (settling syncs under it)
        self.every = every
        self.errors: Counter[str] = Counter()
        self.push_latencies: list[float] = []
        self.syncs = 0
        day = Day(reps=phones, outlets=max(4, phones // 2), steps=0, seed=seed, online=1.0)
        self.simulation = Simulation(url, ADMIN, day)
        self.simulation.now = datetime.now(UTC)
        self.simulation.setup()
        for rep in self.simulation.reps:
            self._instrument(rep)

    def _instrument(self, rep: Rep) -> None:
        network = rep.phone.transport.http._transport  # the simulator's FlakyNetwork
        network.inner = Counting(network.inner, self)  # type: ignore[attr-defined]

    def run(self, seconds: float, on_window: Callable[[], None] | None = None, window: float = 0) -> None:
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=self._phone, args=(rep, deadline)) for rep in self.simulation.reps]
        for thread in threads:
            thread.start()
        next_window = time.monotonic() + window
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.5)
            with self.lock:
                self.simulation.now = datetime.now(UTC)
                self.simulation._manage()
            if on_window is not None and time.monotonic() >= next_window:
                on_window()
                next_window += window
        for thread in threads:
            thread.join()

    def _phone(self, rep: Rep, deadline: float) -> None:
        offset = self.simulation.rng.random() * self.every  # phones do not sync in lockstep
        time.sleep(offset)
        while time.monotonic() < deadline:
            started = time.monotonic()
            with self.lock:
                self.simulation._work(rep)
            try:
                rep.phone.sync()
                with self.lock:
                    self.syncs += 1
            except Offline:
                with self.lock:
                    self.errors["gave up (offline)"] += 1
            time.sleep(max(0.0, self.every - (time.monotonic() - started)))

    def settle_and_check(self) -> list[str]:
        with self.lock:
            self.simulation._close_the_day()
            return self.simulation.check()

    def changes(self) -> int:
        return sum(len(rep.phone.state["decided"]) for rep in self.simulation.reps)

    def faults(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for network in self.simulation.networks:
            total.update(network.faults)
        return dict(total)

    def close(self) -> None:
        self.simulation.close()


def percentile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100)[q - 1] * 1000, 1) if len(values) >= 2 else 0.0


def processes(servers: list[Serve]) -> dict[str, int]:
    pids = {f"serve{index}": server.process.pid for index, server in enumerate(servers, start=1)}
    return {**pids, "store": servers[0].store_pid}


def run(phones: int, instances: int, seconds: float, every: float, workdir: Path) -> dict[str, Any]:
    servers = [Serve("sqlite", workdir / "one", extra=HONEST_LIMITS)]
    for n in range(2, instances + 1):
        servers.append(Serve("sqlite", workdir / f"i{n}", uri=servers[0].uri, extra=HONEST_LIMITS))
    fleet = None
    try:
        pids = processes(servers)
        rss_start = {name: rss_mb(pid) for name, pid in pids.items()}
        fleet = Fleet(servers[0].url, phones, every)
        for index, rep in enumerate(fleet.simulation.reps):  # phones spread over the instances
            rep.phone.transport.endpoint = servers[index % instances].url + "/graphql"
            rep.phone.photos.files = servers[index % instances].url + "/files/"
        cpu_start, started = {name: cpu_seconds(pid) for name, pid in pids.items()}, time.monotonic()
        fleet.run(seconds)
        elapsed = time.monotonic() - started
        cores = {name: round((cpu_seconds(pid) - cpu_start[name]) / elapsed, 2) for name, pid in pids.items()}
        latencies = list(fleet.push_latencies)
        failures = fleet.settle_and_check()
        return {
            "bench": "fleet",
            "phones": phones,
            "instances": instances,
            "sync_every_s": every,
            "seconds": round(elapsed, 1),
            "syncs_per_s": round(fleet.syncs / elapsed, 2),
            "pushes_per_s": round(len(latencies) / elapsed, 2),
            "changes_per_s": round(fleet.changes() / elapsed, 2),
            "push_p50_ms": percentile(latencies, 50),
            "push_p99_ms": percentile(latencies, 99),
            "push_max_ms": round(max(latencies, default=0) * 1000, 1),
            "errors": dict(fleet.errors),
            "simulated_network_faults": fleet.faults(),
            "cores": cores,
            "rss_mb_start": rss_start,
            "rss_mb_end": {name: rss_mb(pid) for name, pid in pids.items()},
            "check": failures or "passed",
        }
    finally:
        if fleet is not None:
            fleet.close()
        for server in reversed(servers):
            server.stop()


def soak(phones: int, minutes: float, every: float, workdir: Path, window_minutes: float = 5) -> None:
    server = Serve("sqlite", workdir / "soak", extra=HONEST_LIMITS)
    fleet = Fleet(server.url, phones, every)
    pids = processes([server])
    windows: list[dict[str, Any]] = []

    def close_window() -> None:
        with fleet.lock:
            latencies, fleet.push_latencies = fleet.push_latencies, []
        windows.append(
            {
                "bench": "fleet.soak.window",
                "window": len(windows) + 1,
                "pushes": len(latencies),
                "push_p99_ms": percentile(latencies, 99),
                "rss_mb": {name: rss_mb(pid) for name, pid in pids.items()},
                "errors_so_far": dict(fleet.errors),
            }
        )
        print(json.dumps(windows[-1]), flush=True)

    try:
        fleet.run(minutes * 60, on_window=close_window, window=window_minutes * 60)
        failures = fleet.settle_and_check()
        first, last = windows[0], windows[-1]
        print(
            json.dumps(
                {
                    "bench": "fleet.soak",
                    "phones": phones,
                    "minutes": minutes,
                    "p99_drift": round(last["push_p99_ms"] / first["push_p99_ms"], 2) if first["push_p99_ms"] else None,
                    "rss_drift_mb": {name: round(last["rss_mb"][name] - first["rss_mb"][name], 1) for name in pids},
                    "errors": dict(fleet.errors),
                    "check": failures or "passed",
                }
            )
        )
    finally:
        fleet.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phones", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=float, default=15, help="seconds between a phone's syncs")
    parser.add_argument("--soak", action="store_true", help="one instance, --minutes long, drift per 5 minutes")
    parser.add_argument("--minutes", type=float, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fieldsync-fleet-") as folder:
        if args.soak:
            soak(args.phones[0], args.minutes, args.every, Path(folder))
            return
        for instances in args.instances:
            for phones in args.phones:
                workdir = Path(folder) / f"{instances}-{phones}"
                print(json.dumps(run(phones, instances, args.seconds, args.every, workdir)))


if __name__ == "__main__":
    main()
