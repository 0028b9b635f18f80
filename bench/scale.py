"""Flat cost from 1k to 1M stored documents: a real ``fieldsync serve`` on a seeded store.

    python -m bench.scale [--sizes 1000,10000,100000,1000000] [--engines sqlite,memory]

Per engine and size: starts ``fieldsync serve`` (its own embedded store child), seeds
the store directly through PyMongo with the service's own document builders (records,
receipts and history events in equal thirds, owned by 50 reps, one of them the rep whose
device the bench drives), then measures over HTTP: the wall time of 1-change and
50-change pushes, store and service CPU per change (``/proc/<pid>/stat`` of each
process), an empty delta pull, a delta pull of 50, an initial sync page, a history page
at the end of the history (unfiltered and by rep), a refusal list (each read the median
of 5), and the idle CPU of both processes. Prints one JSON line per size, then each figure as a ratio to the
smallest size of the same engine. The machine is shared: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from service.domain.history import SyncEvent
from service.domain.outcomes import ChangeStatus
from service.domain.receipts import Receipt
from service.domain.record_types import RecordType
from service.domain.records import Record
from service.store import history, receipts, records, sequence

ADMIN = "bench-scale-admin"
REPS = 50
OUTLETS = 500
VISITED = 100  # outlets assigned to the bench rep, which its pushes visit: the same at every size
T0 = datetime(2026, 11, 1, tzinfo=UTC)
TICK = os.sysconf("SC_CLK_TCK")
PUSH = "mutation($i: PushInput!){pushChanges(input:$i){results{status refusal{code}}}}"
PULL = 'query($s: String){pull(deviceId:"bench-d", since:$s, limit:500){records{recordId} cursor hasMore}}'
HISTORY = "query($a: String, $f: SyncHistoryFilter){syncHistory(first:100, after:$a, filter:$f){edges{cursor}}}"
REFUSALS = "query{refusals(first:50){edges{cursor}}}"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Serve:
    """``fieldsync serve`` on a free port; ``uri`` is its embedded store's, read from its log."""

    def __init__(self, engine: str, workdir: Path, uri: str | None = None, extra: dict[str, str] | None = None) -> None:
        """``uri``: join that store (a second instance) instead of starting one.
        ``extra``: settings over the bench's own."""
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        store = ["--memory"] if engine == "memory" else ["--data-dir", str(workdir / "data")]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_") and k != "MONGODB_URI"}
        env |= {"FIELDSYNC_ADMIN_TOKEN": ADMIN, "FIELDSYNC_RATE_LIMIT_PER_MINUTE": "1000000"}
        env |= {"FIELDSYNC_RATE_LIMIT_BURST": "100000", "FIELDSYNC_STORE_TIMEOUT_SECONDS": "600"}
        env |= extra or {}
        if uri is not None:
            env["MONGODB_URI"], store = uri, []
        self.log = workdir / "serve.log"
        command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *store]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("w"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        if uri is None:
            found = re.search(r"mongodb://[^ \s]+", self.log.read_text())
            assert found, self.log.read_text()
            uri = found.group(0)
        self.uri = uri
        self.store_pid = _store_pid(self.process.pid) if store else 0

    def call(self, query: str, variables: dict[str, Any] | None = None, token: str = ADMIN) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=600,
        )
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.process.pid), cpu_seconds(self.store_pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _store_pid(pid: int) -> int:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    children = [c for task in tasks for c in (task / "children").read_text().split()]
    [child] = [int(c) for c in children if b"service.store.embedded" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return child


def seed(uri: str, size: int, bench_rep: str, chunk: int = 5000) -> float:
    """``size`` documents in equal thirds: records, receipts, history events. Returns seconds."""
    started = time.perf_counter()
    db = MongoClient(uri, tz_aware=True)["fieldsync"]
    owners = [bench_rep] + [f"seed-rep-{n}" for n in range(1, REPS)]
    third = size // 3
    seq = 0
    batch: list[dict[str, Any]] = []

    def flush(collection: str) -> None:
        if batch:
            db[collection].insert_many(batch, ordered=False)
            batch.clear()

    for n in range(third):
        seq += 1
        if n < OUTLETS:
            assigned = sorted({bench_rep, owners[n % REPS]} if n < VISITED else {owners[n % REPS]})
            record = Record(RecordType.OUTLET, f"seed-o{n}", 1, {"name": f"Outlet {n}", "repIds": assigned}, T0, "hq")
            batch.append(records.to_document(record, seq))
        else:
            owner = owners[n % REPS]
            fields = {"outletId": f"seed-o{n % OUTLETS}", "status": "DONE", "notes": "x" * 80}
            record = Record(RecordType.VISIT, f"seed-v{n}", 1, fields, T0, owner, owner=owner)
            batch.append(records.to_document(record, seq, [(RecordType.OUTLET, f"seed-o{n % OUTLETS}")]))
        if len(batch) >= chunk:
            flush(records.COLLECTION)
    flush(records.COLLECTION)
    for n in range(third):
        device = f"seed-d{n % REPS}"
        receipt = Receipt(device, f"seed-{n}", ChangeStatus.APPLIED, 1, T0, RecordType.VISIT, f"seed-v{n}", 1)
        batch.append(receipts.to_document(receipt))
        if len(batch) >= chunk:
            flush(receipts.COLLECTION)
    flush(receipts.COLLECTION)
    for n in range(size - 2 * third):
        seq += 1
        owner = owners[n % REPS]
        event = SyncEvent(
            action="APPLIED",
            at=T0 + timedelta(seconds=n),
            device_id=f"seed-d{n % REPS}",
            rep_id=owner,
            offline_id=f"seed-{n}",
            record_type=RecordType.VISIT,
            record_id=f"seed-v{n}",
            version_after=1,
            utc_offset_minutes=480,
        )
        batch.append(history.to_document(event, seq))
        if len(batch) >= chunk:
            flush(history.COLLECTION)
    flush(history.COLLECTION)
    db[sequence.COLLECTION].update_one({"_id": "sequence"}, {"$max": {"value": seq}}, upsert=True)
    db.client.close()
    return time.perf_counter() - started


def visits(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "offlineId": f"bench-{n}",
            "recordType": "VISIT",
            "recordId": f"bench-v{n}",
            "operation": "UPSERT",
            "capturedAt": "2026-11-20T09:00:00+08:00",
            "fields": {"outletId": f"seed-o{n % VISITED}", "status": "PLANNED"},
        }
        for n in range(start, start + count)
    ]


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def median_ms(call: Any, times: int = 5) -> float:
    """The median of ``times`` timed calls of a read (the machine is shared: one call is noise)."""
    return statistics.median(timed(call) for _ in range(times))


def measure(engine: str, size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fieldsync-scale-") as tmp:
        serve = Serve(engine, Path(tmp))
        try:
            rep = serve.call('mutation{createUser(input:{name:"Bench", role:REP}){user{id} token}}')["createUser"]
            seconds = seed(serve.uri, size, rep["user"]["id"])
            token = serve.call(
                'mutation{registerDevice(input:{deviceId:"bench-d", name:"P", platform:"android"}){token}}',
                token=rep["token"],
            )["registerDevice"]["token"]

            def push(start: int, count: int) -> None:
                results = serve.call(PUSH, {"i": {"deviceId": "bench-d", "changes": visits(start, count)}}, token)
                assert all(r["status"] == "APPLIED" for r in results["pushChanges"]["results"]), results

            def pull(since: str | None) -> dict[str, Any]:
                return serve.call(PULL, {"s": since}, token)["pull"]

            push(0, 1)  # warm
            one = [timed(lambda n=n: push(1 + n, 1)) for n in range(10)]
            cpu_before = serve.cpu()
            fifty = [timed(lambda n=n: push(100 + 50 * n, 50)) for n in range(10)]
            service_cpu, store_cpu = (after - before for after, before in zip(serve.cpu(), cpu_before, strict=True))
            initial = median_ms(lambda: pull(None))
            cursor = pull(None)["cursor"]
            while (page := pull(cursor))["hasMore"]:
                cursor = page["cursor"]
            cursor = page["cursor"]
            empty = median_ms(lambda: pull(cursor))
            push(1000, 50)
            delta = median_ms(lambda: pull(cursor))
            head = MongoClient(serve.uri)["fieldsync"][sequence.COLLECTION].find_one({"_id": "sequence"})
            near_end = base64.urlsafe_b64encode(f"event:{head['value'] - 300}".encode()).decode()
            history_end = median_ms(lambda: serve.call(HISTORY, {"a": near_end}))
            history_rep = median_ms(lambda: serve.call(HISTORY, {"a": near_end, "f": {"repId": rep["user"]["id"]}}))
            refusals_ms = median_ms(lambda: serve.call(REFUSALS))
            idle_before, idle_started = serve.cpu(), time.monotonic()
            time.sleep(10)
            idle = [(a - b) / (time.monotonic() - idle_started) for a, b in zip(serve.cpu(), idle_before, strict=True)]
            return {
                "engine": engine,
                "documents": size,
                "seed_s": round(seconds, 1),
                "push1_ms": round(statistics.median(one), 1),
                "push50_ms": round(statistics.median(fifty), 1),
                "store_cpu_ms_per_change": round(store_cpu * 1000 / 500, 2),
                "service_cpu_ms_per_change": round(service_cpu * 1000 / 500, 2),
                "pull_empty_ms": round(empty, 1),
                "pull_delta50_ms": round(delta, 1),
                "pull_initial_page_ms": round(initial, 1),
                "history_end_ms": round(history_end, 1),
                "history_end_by_rep_ms": round(history_rep, 1),
                "refusals_ms": round(refusals_ms, 1),
                "idle_service_cores": round(idle[0], 4),
                "idle_store_cores": round(idle[1], 4),
                "rss_service_mb": rss_mb(serve.process.pid),
                "rss_store_mb": rss_mb(serve.store_pid),
            }
        finally:
            serve.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--engines", default="sqlite,memory")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(measure(engine, size))
            print(json.dumps({"bench": "scale", **rows[-1]}), flush=True)
            base = rows[0]
            ratios = {
                key: round(value / base[key], 2) if base[key] else None
                for key, value in rows[-1].items()
                if isinstance(value, float) and not key.startswith(("seed", "idle", "rss"))
            }
            print(json.dumps({"bench": "scale.ratio", "engine": engine, "documents": size, **ratios}), flush=True)


if __name__ == "__main__":
    main()
