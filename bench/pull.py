"""Pull: an initial sync of 5k records, then a delta of 50.

    python -m bench.pull [--records 5000] [--page 500] [--rounds 5]

First against a real `fieldsync serve` process: the service CPU (from /proc) per
record of an initial sync in pages of 1, 50 and 500 over GraphQL (pages of 50 and 500:
the median and best of ``--rounds`` initial syncs), beside the peers' server CPU per
document as ratios. Then in process: seeds a rep with visits
(pushed in batches of 100) across 50 outlets, times the initial sync page by page
and a delta after 50 more changes. Prints JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.harness import bench_services, report
from bench.push import wire_change
from bench.served import Served, peer_ratios, served
from service.domain.changes import Change, Operation
from service.domain.record_types import RecordType
from service.services import Services

T0 = datetime(2026, 11, 20, 1, tzinfo=UTC)
OUTLETS = 50


def visits(start: int, count: int) -> list[Change]:
    return [
        Change(
            offline_id=f"pull-{n}",
            record_type=RecordType.VISIT,
            record_id=f"v{n}",
            operation=Operation.UPSERT,
            captured_at=T0 + timedelta(seconds=n),
            fields={"outletId": f"o{n % OUTLETS}", "status": "PLANNED"},
        )
        for n in range(start, start + count)
    ]


PULL = """query($d: ID!, $s: String, $l: Int){ pull(deviceId:$d, since:$s, limit:$l){ cursor hasMore
  records{ recordType recordId version deleted fields crdtState updatedAt updatedBy outOfScope } } }"""


def served_pulls(records: int, rounds: int) -> None:
    """Service CPU per pulled record, initial syncs of ``records`` visits, by page size (median of ``rounds``)."""
    with served() as server:
        rep_id, rep_token = server.rep("Puller")
        for n in range(OUTLETS):
            server.write("OUTLET", f"o{n}", {"name": f"Outlet {n}", "repIds": [rep_id]})
        token = server.device(rep_token, "d1")
        for start in range(0, records, 500):
            batch = [wire_change(c) for c in visits(start, min(500, records - start))]
            server.push(token, "d1", batch)
        for page in (1, 50, 500):
            wanted = records // 10 if page == 1 else records
            repeats = 1 if page == 1 else rounds  # pages of one: a request per record, one sync is enough
            syncs = [served_initial_sync(server, token, page, wanted) for _ in range(repeats)]
            pulled, pages = syncs[0][:2]
            per_record = sorted(cpu / pulled * 1e6 for _, _, cpu in syncs)
            report(
                "pull.served.initial",
                page=page,
                pages=pages,
                records=pulled,
                rounds=len(syncs),
                service_ms_per_page=round(statistics.median(cpu for _, _, cpu in syncs) / pages * 1000, 2),
                service_us_per_record=round(statistics.median(per_record), 1),
                best_us_per_record=round(per_record[0], 1),
                **peer_ratios(statistics.median(per_record)),
            )


def served_initial_sync(server: Served, token: str, page: int, wanted: int) -> tuple[int, int, float]:
    """Records and pages of an initial sync of up to ``wanted`` records, and the service CPU it took."""
    pulled = pages = 0
    cursor = None
    started = server.cpu_seconds()
    while pulled < wanted:
        result = server.data(PULL, {"d": "d1", "s": cursor, "l": page}, token)["pull"]
        pulled, pages, cursor = pulled + len(result["records"]), pages + 1, result["cursor"]
        if not result["hasMore"]:
            break
    return pulled, pages, server.cpu_seconds() - started


async def pull_everything(services: Services, cursor: str | None, page: int) -> tuple[int, int, str, float]:
    records = pages = 0
    started = time.perf_counter()
    while True:
        result, cursor = await services.sync.pull("rep1", cursor, page)
        records, pages = records + len(result.records), pages + 1
        if not result.has_more:
            return records, pages, cursor, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="served initial syncs per page size (not page 1)")
    args = parser.parse_args()
    served_pulls(args.records, args.rounds)
    async with bench_services() as (services, listener):
        for n in range(OUTLETS):
            outlet = {"name": f"Outlet {n}", "repIds": ["rep1"]}
            await services.sync.write_record(RecordType.OUTLET, f"o{n}", outlet, None, user_id="hq")
        started = time.perf_counter()
        for start in range(0, args.records, 100):
            await services.sync.push(visits(start, min(100, args.records - start)), device_id="d1", rep_id="rep1")
        report("pull.seed", records=args.records, seconds=round(time.perf_counter() - started, 1))
        listener.reset()
        records, pages, cursor, seconds = await pull_everything(services, None, args.page)
        report(
            "pull.initial",
            records=records,
            pages=pages,
            seconds=round(seconds, 2),
            records_per_s=round(records / seconds),
            round_trips_per_page=round(listener.count / pages, 1),
        )
        await services.sync.push(visits(args.records, 50), device_id="d1", rep_id="rep1")
        listener.reset()
        records, pages, _, seconds = await pull_everything(services, cursor, args.page)
        report("pull.delta", records=records, pages=pages, ms=round(seconds * 1000, 1), round_trips=listener.count)


if __name__ == "__main__":
    asyncio.run(main())
