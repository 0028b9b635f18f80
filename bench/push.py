"""Push throughput and database round trips per batch of 50 changes.

    python -m bench.push [--batches 10] [--sqlite]

Prints one JSON line per scenario: changes/s, round trips per batch (counted
with a PyMongo command listener), and the CRDT document cache hit ratio; then
the service's cost per merged CRDT update against a raw pycrdt apply.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pycrdt import Doc, Map

from bench.harness import bench_services, report
from service.domain.changes import Change, Operation
from service.domain.record_types import RecordType
from service.services import Services

BATCH = 50
HOT_OUTLETS = 10
T0 = datetime(2026, 11, 20, 1, tzinfo=UTC)


def owned_batch(batch: int, size: int, prefix: str = "owned") -> list[Change]:
    return [
        Change(
            offline_id=f"own-{prefix}-{batch}-{i}",
            record_type=RecordType.VISIT,
            record_id=f"v-{prefix}-{batch}-{i}",
            operation=Operation.UPSERT,
            captured_at=T0 + timedelta(seconds=i),
            fields={"outletId": f"o{i % HOT_OUTLETS}", "status": "PLANNED"},
        )
        for i in range(size)
    ]


def shared_batch(batch: int, size: int) -> list[Change]:
    changes = []
    for i in range(size):
        outlet = f"o{i % HOT_OUTLETS}"
        stamp = T0 + timedelta(minutes=batch, seconds=i)
        if i % 2:
            changes.append(
                Change(
                    offline_id=f"sh-{batch}-{i}",
                    record_type=RecordType.OUTLET,
                    record_id=outlet,
                    operation=Operation.UPSERT,
                    captured_at=stamp,
                    fields={"phone": f"03-{batch}-{i}"},
                )
            )
        else:
            doc = Doc(client_id=1000 + batch * 100 + i)
            doc.get("fields", type=Map)["contactName"] = f"Contact {batch}-{i}"
            changes.append(
                Change(
                    offline_id=f"sh-{batch}-{i}",
                    record_type=RecordType.OUTLET,
                    record_id=outlet,
                    operation=Operation.UPSERT,
                    captured_at=stamp,
                    crdt_update=doc.get_update(),
                )
            )
    return changes


def mixed_batch(batch: int, size: int) -> list[Change]:
    return owned_batch(batch, size // 2, "mixed") + shared_batch(batch + 1000, size - size // 2)


async def seed(services: Services) -> None:
    for n in range(HOT_OUTLETS):
        await services.sync.write_record(
            RecordType.OUTLET, f"o{n}", {"name": f"Outlet {n}", "latitude": 3.1, "longitude": 101.6}, None, user_id="hq"
        )


async def scenario(services: Services, listener, name: str, make, batches: int) -> None:  # type: ignore[no-untyped-def]
    cache = services.sync.documents
    hits, misses = cache.hits, cache.misses
    listener.reset()
    started = time.perf_counter()
    for batch in range(batches):
        result = await services.sync.push(make(batch, BATCH), device_id=f"dev-{name}", rep_id="rep1")
        assert all(o.status.value in ("APPLIED", "MERGED") for o in result.outcomes), result.outcomes[0]
    elapsed = time.perf_counter() - started
    looked_up = (cache.hits - hits) + (cache.misses - misses)
    report(
        f"push.{name}",
        batch_size=BATCH,
        batches=batches,
        changes_per_s=round(batches * BATCH / elapsed, 1),
        ms_per_batch=round(elapsed * 1000 / batches, 1),
        round_trips_per_batch=round(listener.count / batches, 1),
        round_trips_by_command={k: round(v / batches, 1) for k, v in sorted(listener.by_command.items())},
        document_cache_hit_ratio=round((cache.hits - hits) / looked_up, 3) if looked_up else None,
    )


def crdt_merge_cost(updates: int = 2000, documents: int = 50) -> None:
    """Service-side merge (patch -> Yjs update -> apply -> materialize -> encode) against raw pycrdt apply.

    The updates are spread over ``documents`` outlets (each patch adds a writer to
    its document's state vector, so per-merge cost grows with a document's history).
    """
    from crdt import FieldStamp, SharedDocument, field_patch_update

    raw_updates = []
    for i in range(updates):
        doc = Doc(client_id=10_000 + i)
        doc.get("fields", type=Map)["phone"] = f"03-{i}"
        raw_updates.append(doc.get_update())
    targets = [Doc() for _ in range(documents)]
    for target in targets:
        target.get("fields", type=Map)
    started = time.perf_counter()
    for i, update in enumerate(raw_updates):
        targets[i % documents].apply_update(update)
    raw = (time.perf_counter() - started) / updates
    shared = [SharedDocument() for _ in range(documents)]
    started = time.perf_counter()
    for i in range(updates):
        document = shared[i % documents]
        document.apply(field_patch_update({"phone": f"03-{i}"}, FieldStamp(T0 + timedelta(seconds=i), "dev")))
        document.materialize()
        document.state()
    service = (time.perf_counter() - started) / updates
    report(
        "crdt.merge",
        updates=updates,
        documents=documents,
        raw_apply_us=round(raw * 1e6, 1),
        service_merge_us=round(service * 1e6, 1),
        ratio_to_raw=round(service / raw, 1),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true", help="use the SQLite engine instead of memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with bench_services(Path(tmp) if args.sqlite else None) as (services, listener):
            await seed(services)
            await scenario(services, listener, "owned", owned_batch, args.batches)
            await scenario(services, listener, "shared", shared_batch, args.batches)
            await scenario(services, listener, "mixed", mixed_batch, args.batches)
    crdt_merge_cost(documents=50)
    crdt_merge_cost(documents=1)  # one very hot outlet: the worst case


if __name__ == "__main__":
    asyncio.run(main())
