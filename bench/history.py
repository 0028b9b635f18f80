"""Sync history at volume: inserting events, paging them, exporting them, counting a day.

    python -m bench.history [--events 200000] [--insert-budget 240] [--sqlite]

Inserts events straight into the history collection (batches of at most 1000, the
memory engine unless --sqlite; MONGODB_URI when set), then times paging
through all of them with syncHistory-style pages of 1000, a page at the start
against one at the end, the NDJSON export over the server-side cursor
(records/s, MB/s, tracemalloc peak for a quarter against all of them), and
the daily report's two aggregations. Prints one JSON line per result.

Events are keyed by zero-padded text (see ``service.store.history.event_key``),
which keeps each insert O(1) on the embedded store. The insert phase still stops
at --insert-budget seconds on a slow machine, and the last line then
extrapolates the time 200k inserts would take from the measured per-event cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.harness import RoundTrips, bench_services, report
from service.api import export
from service.app import declared_indexes
from service.domain.history import PUSH, SyncEvent
from service.domain.record_types import RecordType
from service.settings import Settings
from service.store import history
from service.store.database import Store, connect, ensure_indexes

BATCH = 1000
COMMAND_SECONDS = 2.0  # longest insert command to send
PAGE = 1000
REPS = 50
ACTIONS = ("APPLIED", "APPLIED", "APPLIED", "MERGED", "DUPLICATE", "UNCHANGED", "CONFLICT", "REFUSED", PUSH)


def documents(first: int, count: int, start: datetime) -> list[dict]:
    """``count`` events from sequence number ``first``, one every 200 ms, shaped like real pushes."""
    batch = []
    for seq in range(first, first + count):
        rep = seq % REPS
        action = ACTIONS[seq % len(ACTIONS)]
        event = SyncEvent(
            action=action,
            at=start + timedelta(milliseconds=200 * seq),
            sync_id=f"sync-{seq // 50}",
            device_id=f"dev-{rep}",
            rep_id=f"rep-{rep}",
            actor_id=f"dev-{rep}",
            offline_id=None if action == PUSH else f"c-{seq}",
            record_type=None if action == PUSH else RecordType.VISIT,
            record_id=None if action == PUSH else f"v-{seq}",
            attempt=1,
            version_before=None,
            version_after=None if action == PUSH else 1,
            utc_offset_minutes=480,
            detail={"counts": {"APPLIED": 30}, "queueDepth": 0} if action == PUSH else {},
        )
        batch.append(history.to_document(event, seq))
    return batch


@asynccontextmanager
async def bench_store(sqlite: bool) -> AsyncIterator[tuple[Store, RoundTrips, str]]:
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        with tempfile.TemporaryDirectory() as tmp:
            async with bench_services(Path(tmp) if sqlite else None) as (services, listener):
                yield services.store, listener, "embedded-sqlite" if sqlite else "embedded-memory"
        return
    listener = RoundTrips()
    settings = Settings(mongodb_uri=uri, database=f"bench_{uuid.uuid4().hex[:8]}")
    store = connect(uri, settings.database, embedded=False, event_listeners=[listener])
    try:
        await ensure_indexes(store, declared_indexes(settings))
        yield store, listener, "mongodb"
    finally:
        await store.client.drop_database(settings.database)
        await store.close()


async def insert(store: Store, target: int, budget: float, start: datetime) -> int:
    """Insert up to ``target`` events within ``budget`` seconds; reports the cost per event as the collection grows."""
    collection = store.db[history.COLLECTION]
    sizes: list[int] = []
    costs: list[float] = []  # seconds per event, per batch
    began = time.perf_counter()
    inserted = 0
    count = BATCH
    while inserted < target and time.perf_counter() - began < budget:
        count = min(count, target - inserted)
        batch = documents(inserted + 1, count, start)
        t = time.perf_counter()
        await collection.insert_many(batch, ordered=True)
        cost = (time.perf_counter() - t) / count
        sizes.append(inserted + count // 2)
        costs.append(cost)
        inserted += count
        # The embedded server runs a command on its event loop: one that takes much more than a few seconds
        # starves its heartbeats, and the client drops the connection ("operation cancelled"). Keep each ~2 s.
        count = max(50, min(BATCH, int(COMMAND_SECONDS / cost)))
        if len(costs) == 1 or len(costs) % 10 == 0 or inserted == target:
            report(
                "history.insert",
                inserted=inserted,
                batch=len(batch),
                ms_per_event=round(cost * 1000, 3),
                events_per_s=round(1 / cost, 1),
                elapsed_s=round(time.perf_counter() - began, 1),
            )
    elapsed = time.perf_counter() - began
    figures: dict[str, object] = {
        "inserted": inserted,
        "elapsed_s": round(elapsed, 1),
        "events_per_s": round(inserted / elapsed, 1),
    }
    if inserted < target and len(costs) >= 3:
        # cost(n) ~ a + b*n per event  =>  filling to N costs a*N + b*N^2/2
        b, a = statistics.linear_regression(sizes, costs)
        figures |= {
            "fit_ms_per_event": round(a * 1000, 3),
            "fit_us_per_stored_event": round(b * 1e6, 3),
            f"extrapolated_s_for_{target}": round(a * target + b * target**2 / 2),
            "extrapolated_ms_per_event_at_target": round((a + b * target) * 1000, 1),
        }
    report("history.insert.total", target=target, **figures)
    return inserted


async def paging(store: Store, listener: RoundTrips, total: int) -> None:
    everything = history.HistoryFilter()
    listener.reset()
    began = time.perf_counter()
    after, seen, pages, more = 0, 0, 0, True
    while more:
        events, more = await history.page(store, everything, after, PAGE)
        if events:
            after = events[-1].id or after
        seen += len(events)
        pages += 1
    elapsed = time.perf_counter() - began
    assert seen == total, (seen, total)
    report(
        "history.page.all",
        events=seen,
        pages=pages,
        page_size=PAGE,
        seconds=round(elapsed, 2),
        events_per_s=round(seen / elapsed, 1),
        round_trips_per_page=round(listener.count / pages, 2),
    )
    # The last full page of everything, and of one rep's events (1 in REPS).
    rep = history.HistoryFilter(rep_id="rep-7")
    rep_tail = max(total - PAGE * REPS - 1, total // 2)  # a full page once there are 50k events
    for name, flt, tail in (("all", everything, total - PAGE - 1), ("rep", rep, rep_tail)):
        first, first_count = await _median_page_ms(store, flt, 0)
        last, last_count = await _median_page_ms(store, flt, max(tail, 0))
        report(
            "history.page.start_vs_end",
            filter=name,
            events=total,
            start_ms=first,
            start_events=first_count,
            end_ms=last,
            end_events=last_count,
            end_over_start=round(last / first, 2) if first else None,
        )


async def _median_page_ms(store: Store, flt: history.HistoryFilter, after: int, runs: int = 5) -> tuple[float, int]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        events, _ = await history.page(store, flt, after, PAGE)
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 2), len(events)


async def exporting(store: Store, listener: RoundTrips, total: int) -> None:
    async def run(after: int, traced: bool) -> tuple[int, int, float, int]:
        lines = size = 0
        if traced:
            tracemalloc.start()
        began = time.perf_counter()
        try:
            async for chunk in export.ndjson(history.stream(store, history.HistoryFilter(), after_id=after)):
                lines += chunk.count(b"\n")
                size += len(chunk)
            elapsed = time.perf_counter() - began
            peak = tracemalloc.get_traced_memory()[1] if traced else 0
        finally:
            if traced:
                tracemalloc.stop()
        return lines, size, elapsed, peak

    listener.reset()
    lines, size, elapsed, _ = await run(0, traced=False)
    assert lines == total, (lines, total)
    report(
        "history.export",
        events=lines,
        seconds=round(elapsed, 2),
        events_per_s=round(lines / elapsed, 1),
        mb_per_s=round(size / elapsed / 1e6, 2),
        mb=round(size / 1e6, 1),
        round_trips=listener.count,
        max_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )
    quarter = await run(total - total // 4, traced=True)
    whole = await run(0, traced=True)
    report(
        "history.export.memory",
        quarter_events=quarter[0],
        quarter_peak_kb=round(quarter[3] / 1024),
        all_events=whole[0],
        all_peak_kb=round(whole[3] / 1024),
        all_over_quarter=round(whole[3] / quarter[3], 2) if quarter[3] else None,
    )


async def daily_report(store: Store, listener: RoundTrips, start: datetime, total: int) -> None:
    day_start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    listener.reset()
    began = time.perf_counter()
    tallies = await history.count_actions(store, day_start, day_start + timedelta(days=1))
    pushed = await history.devices_pushed(store, day_start, day_start + timedelta(days=1))
    elapsed = time.perf_counter() - began
    report(
        "history.report.day",
        events=total,
        counted=sum(t.count for t in tallies),
        devices_pushed=len(pushed),
        ms=round(elapsed * 1000, 1),
        round_trips=listener.count,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--insert-budget", type=float, default=240, help="seconds to spend inserting, at most")
    parser.add_argument("--sqlite", action="store_true", help="use the SQLite engine instead of memory")
    args = parser.parse_args()
    # Inside the retention window, so the TTL index keeps every event; 200k events * 200 ms ~ 11 hours.
    start = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    async with bench_store(args.sqlite) as (store, listener, engine):
        report("history.setup", engine=engine, target_events=args.events, insert_budget_s=args.insert_budget)
        total = await insert(store, args.events, args.insert_budget, start)
        await paging(store, listener, total)
        await exporting(store, listener, total)
        await daily_report(store, listener, start, total)


if __name__ == "__main__":
    asyncio.run(main())
