"""Service CPU per push and per change on a real server; round trips; CRDT merge cost.

    python -m bench.push [--batches 10] [--sqlite] [--changes 2000]

First, against a real `fieldsync serve` process: the service CPU (from /proc) per
push and per change for batches of 1, 50 and 500 owned, shared and mixed changes
sent over GraphQL, beside the peers' server CPU per document (PouchDB) and per Yjs
update (Hocuspocus) as ratios (measured in the same run with PEERBENCH set: bench/peers.py).
Then, in process: changes/s, round trips per batch of 50 (counted with a PyMongo
command listener) and the CRDT document cache hit ratio; then the service CPU to
merge one phone's Yjs update into a hot outlet with 10, 1,000 and 10,000 earlier
edits, beside a raw pycrdt apply of the same update, pycrdt's own floor for such a
merge and Hocuspocus' server CPU per update.
Anomaly flagging: the mixed scenario again with flagging off (its round trips and time
beside the flagged run), and the detectors' CPU per change and per push for batches of
1, 50 and 500 geo-stamped visits and orders against baselines already learned.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map

from bench.harness import bench_services, report
from bench.peers import peer_us
from bench.served import Served, peer_ratios, served
from fieldsync_client.yjs_edits import edit_update
from service.domain.anomalies import AnomalyThresholds, Baselines, DeviceBaseline, PushFacts, RepBaseline, flag_push
from service.domain.changes import Change, Operation
from service.domain.outcomes import ChangeStatus, Outcome
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


CLIENT_IDS = itertools.count(1000)  # each phone edit from its own Yjs client


def shared_batch(batch: int, size: int, prefix: str = "sh") -> list[Change]:
    changes = []
    for i in range(size):
        outlet = f"o{i % HOT_OUTLETS}"
        stamp = T0 + timedelta(minutes=batch, seconds=i)
        if i % 2:
            changes.append(
                Change(
                    offline_id=f"{prefix}-{batch}-{i}",
                    record_type=RecordType.OUTLET,
                    record_id=outlet,
                    operation=Operation.UPSERT,
                    captured_at=stamp,
                    fields={"phone": f"03-{batch}-{i}"},
                )
            )
        else:
            doc = Doc(client_id=next(CLIENT_IDS))
            doc.get("fields", type=Map)["contactName"] = f"Contact {batch}-{i}"
            changes.append(
                Change(
                    offline_id=f"{prefix}-{batch}-{i}",
                    record_type=RecordType.OUTLET,
                    record_id=outlet,
                    operation=Operation.UPSERT,
                    captured_at=stamp,
                    crdt_update=doc.get_update(),
                )
            )
    return changes


def mixed_batch(batch: int, size: int) -> list[Change]:
    return owned_batch(batch, size // 2, "mixed") + shared_batch(batch + 1000, size - size // 2, "mixed-sh")


async def seed(services: Services) -> None:
    for n in range(HOT_OUTLETS):
        outlet = {"name": f"Outlet {n}", "latitude": 3.1, "longitude": 101.6, "repIds": ["rep1"]}
        await services.sync.write_record(RecordType.OUTLET, f"o{n}", outlet, None, user_id="hq")


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


def crdt_merge_cost(
    history: int, samples: int = 300, writers: int = 20, whole_delete_set: bool = False
) -> dict[str, float]:
    """Service CPU to merge one device's Yjs update into a hot outlet with ``history`` earlier edits.

    The history is mixed (half device Yjs updates from ``writers`` phones with random client ids,
    half plain patches); the server compacts the document past the service's threshold, as the
    service does, and a phone starts over from the server's state when it sees a new epoch. Each
    sample is one phone's edit made on the server's state (the update its transaction produced, as
    docs/device-client.md says to queue it; with ``whole_delete_set``, ``get_update(state_before)``,
    the same edit with the document's whole delete set), merged as the service does (rule,
    materialize, encode the state, the answer's diff, compaction when due), beside a raw pycrdt
    apply of the same update to a plain document holding the same state, and pycrdt's floor: that
    apply plus the pycrdt calls any merge answering as the service does needs (two state vectors,
    the record read, the state encoded, the device's diff), with nothing of the merge rule's.
    """
    import random

    from crdt import SharedDocument, Stamp
    from service.domain.rules import RuleSettings

    threshold = RuleSettings().crdt_compact_bytes
    rng = random.Random(history)
    server, epoch = SharedDocument(), 0
    phones: dict[int, tuple[int, Doc]] = {}

    def phone_edit(version: int) -> tuple[Doc, bytes]:
        index = rng.randrange(writers)
        started, phone = phones.get(index, (-1, None))
        if phone is None or started != epoch:  # a new epoch: the phone starts over, with a new client id
            phone = Doc(client_id=rng.getrandbits(32))
            phones[index] = (epoch, phone)
        phone.apply_update(server.missing_for(phone.get_state()))
        before, fields = phone.get_state(), phone.get("fields", type=Map)
        update = edit_update(phone, lambda: fields.update({rng.choice(("name", "city", "phone")): f"v{version}"}))
        return phone, phone.get_update(before) if whole_delete_set else update

    def compacted_when_due() -> None:
        nonlocal epoch
        if server.worth_compacting(threshold):
            server.compact()
            epoch += 1

    for version in range(1, history + 1):
        stamp = Stamp(version, f"dev-{version % writers}")
        if version % 2:
            server.write_fields({"phone": f"p{version}"}, stamp, version, version - 1)
        else:
            server.merge_update(phone_edit(version)[1], stamp, version)
        compacted_when_due()
    service_cpu = raw_cpu = floor_cpu = 0.0
    for sample in range(samples):
        version = history + 1 + sample
        phone, update = phone_edit(version)
        raw = Doc()
        raw.apply_update(server.state())
        fields, phone_vector = raw.get("fields", type=Map), phone.get_state()  # the vector comes with the change
        started = time.process_time()
        server.merge_update(update, Stamp(version, "dev-bench"), version)
        server.materialize()
        server.state()
        server.missing_for(phone_vector)
        compacted_when_due()
        service_cpu += time.process_time() - started
        started = time.process_time()
        raw.apply_update(update)
        raw_cpu += time.process_time() - started
        # pycrdt's own calls that any merge answering as the service does needs, and nothing of ours:
        # the state vector before and after, the record read, the state encoded, the device's diff.
        started = time.process_time()
        raw.get_state(), raw.get_state(), str(fields), raw.get_update(), raw.get_update(phone_vector)
        floor_cpu += time.process_time() - started
    return {
        "earlier_edits": history,
        "epochs": epoch,
        "state_bytes": len(server.state()),
        "service_merge_us": round(service_cpu / samples * 1e6, 1),
        "raw_pycrdt_apply_us": round(raw_cpu / samples * 1e6, 1),
        "pycrdt_floor_us": round((raw_cpu + floor_cpu) / samples * 1e6, 1),
    }


def crdt_merge_costs() -> None:
    rows = [crdt_merge_cost(history) for history in (10, 1_000, 10_000)]
    whole = crdt_merge_cost(1_000, whole_delete_set=True)  # phones sending get_update(state_before) instead
    peers, source = peer_us()
    hocuspocus = peers["hocuspocus_update"]  # the target for a hot merge: Hocuspocus' server CPU per Yjs update
    for name, row in [("crdt.merge", row) for row in rows] + [("crdt.merge.whole_delete_set", whole)]:
        report(
            name,
            **row,
            ratio_to_raw=round(row["service_merge_us"] / row["raw_pycrdt_apply_us"], 1),
            ratio_to_floor=round(row["service_merge_us"] / row["pycrdt_floor_us"], 1),
            x_hocuspocus_update=round(row["service_merge_us"] / hocuspocus, 2),
        )
    report(
        "crdt.merge.flatness",
        cost_10k_over_10=round(rows[-1]["service_merge_us"] / rows[0]["service_merge_us"], 2),
        hocuspocus_us_per_update=hocuspocus,
        peers=source,
    )


def field_batch(push: int, size: int) -> list[Change]:
    """Geo-stamped check-ins and orders a rep captures along a day: what the detectors look at."""
    start = T0 + timedelta(hours=push)
    changes = []
    for i in range(size):
        at = start + timedelta(seconds=30 * i)
        latitude, longitude = 3.1 + (i % 17) * 0.001 + push * 1e-5, 101.6 + (i % 13) * 0.001
        if i % 2:
            lines = [{"productId": f"p{(i + n) % 40}", "quantity": 1 + (push + i + n) % 9} for n in range(3)]
            fields: dict[str, object] = {"outletId": f"o{i % HOT_OUTLETS}", "status": "SUBMITTED", "lines": lines}
            record = (RecordType.ORDER, f"or-{push}-{i}")
        else:
            fields = {
                "outletId": f"o{i % HOT_OUTLETS}",
                "status": "CHECKED_IN",
                "checkInAt": at.isoformat(),
                "checkInLatitude": latitude,
                "checkInLongitude": longitude,
            }
            record = (RecordType.VISIT, f"v-{push}-{i}")
        changes.append(
            Change(
                f"f-{push}-{i}",
                record[0],
                record[1],
                Operation.UPSERT,
                at,
                fields=fields,
                latitude=latitude,
                longitude=longitude,
            )
        )
    return changes


def flagging_cpu(size: int, pushes: int) -> None:
    """The detectors' CPU for pushes of ``size`` changes, against baselines learned over 40 earlier pushes."""
    thresholds = AnomalyThresholds()
    baselines = Baselines(RepBaseline("rep1"), DeviceBaseline("dev1"))
    cpu = 0.0
    for push in range(40 + pushes):
        changes = field_batch(push, size)
        outcomes = [Outcome(c.offline_id, ChangeStatus.APPLIED) for c in changes]
        facts = PushFacts(f"s{push}", "dev1", "rep1", changes[-1].captured_at + timedelta(minutes=2), 0)
        started = time.process_time()
        baselines = flag_push(changes, outcomes, {}, baselines, facts, thresholds).baselines
        if push >= 40:
            cpu += time.process_time() - started
    report(
        "push.flagging_cpu",
        batch_size=size,
        pushes=pushes,
        us_per_push=round(cpu / pushes * 1e6, 1),
        us_per_change=round(cpu / (pushes * size) * 1e6, 1),
    )


def wire_change(change: Change, captured_at: datetime | None = None) -> dict[str, object]:
    """The GraphQL ChangeInput a phone sends for ``change`` (captured at ``captured_at`` if given)."""
    return {
        "offlineId": change.offline_id,
        "recordType": change.record_type.value,
        "recordId": change.record_id,
        "operation": change.operation.value,
        "capturedAt": (captured_at or change.captured_at).isoformat(),
        "fields": change.fields,
        "crdtUpdate": base64.b64encode(change.crdt_update).decode() if change.crdt_update else None,
    }


# Served edits are captured a millisecond (what BSON keeps) apart, in order, in the recent past.
CAPTURES = (datetime.now(UTC) - timedelta(hours=1) + timedelta(milliseconds=n) for n in itertools.count())
SCENARIOS = {"owned": owned_batch, "shared": shared_batch, "mixed": mixed_batch}
BATCH_SIZES = (1, 50, 500)


class Phone:
    """A device's Yjs documents of shared outlets: it edits on what the server last sent it, as apps do, and
    starts over from the record's state with a new client id when the record moves to a new epoch (compaction)."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[int, Doc]] = {}  # record id -> (the epoch its document is on, the document)

    def wire(self, change: Change) -> dict[str, object]:
        """``change`` as this phone sends it: a Yjs edit made on its own document, with its state vector and epoch."""
        wire = wire_change(change, next(CAPTURES))
        if change.crdt_update is not None:
            epoch, doc = self.docs.setdefault(change.record_id, (0, Doc(client_id=next(CLIENT_IDS))))
            fields = doc.get("fields", type=Map)
            update = edit_update(doc, lambda: fields.update({"contactName": f"Contact {change.offline_id}"}))
            wire["crdtUpdate"] = base64.b64encode(update).decode()
            wire["stateVector"] = base64.b64encode(doc.get_state()).decode()
            wire["crdtEpoch"] = epoch
        return wire

    def receive(self, results: list[dict[str, Any]]) -> None:
        for result in results:
            record = result["record"] or {}
            if record.get("crdtState") and record["recordId"] in self.docs:
                epoch, doc = self.docs[record["recordId"]]
                if record["crdtEpoch"] != epoch:
                    epoch, doc = record["crdtEpoch"], Doc(client_id=next(CLIENT_IDS))
                    self.docs[record["recordId"]] = (epoch, doc)
                doc.apply_update(base64.b64decode(record["crdtState"]))


def served_scenario(
    server: Served, rep_token: str, name: str, size: int, changes: int, pushes: itertools.count
) -> None:
    """Service CPU per push and per change for ``changes`` changes pushed ``size`` at a time, from a new device."""
    device = f"dev-{name}-{size}-{next(pushes)}"
    token = server.device(rep_token, device)
    make = SCENARIOS[name]
    phone = Phone()

    def push() -> None:
        results = server.push(token, device, [phone.wire(c) for c in make(next(pushes), size)])
        assert all(r["status"] in ("APPLIED", "MERGED") for r in results), [
            r for r in results if r["status"] not in ("APPLIED", "MERGED")
        ][:1]
        phone.receive(results)

    push()  # warm-up: the first push of a device pays its first look-ups
    count = max(1, changes // size)
    started = server.cpu_seconds()
    for _ in range(count):
        push()
    cpu = server.cpu_seconds() - started
    per_change = cpu / (count * size) * 1e6
    report(
        f"push.served.{name}",
        batch_size=size,
        pushes=count,
        service_ms_per_push=round(cpu / count * 1000, 2),
        service_us_per_change=round(per_change, 1),
        **peer_ratios(per_change),
    )


def served_rep(server: Served) -> str:
    """The bench rep, holding the hot outlets: its token."""
    rep_id, token = server.rep("Bench Rep")
    for n in range(HOT_OUTLETS):
        outlet = {"name": f"Outlet {n}", "latitude": 3.1, "longitude": 101.6, "repIds": [rep_id]}
        server.write("OUTLET", f"o{n}", outlet)
    return token


def served_pushes(changes: int) -> None:
    pushes = itertools.count()
    with served() as server:
        rep = served_rep(server)
        for size in BATCH_SIZES:
            for name in SCENARIOS:
                served_scenario(server, rep, name, size, max(changes if size > 1 else changes // 10, size), pushes)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true", help="use the SQLite engine instead of memory")
    parser.add_argument("--changes", type=int, default=2000, help="changes per served scenario (batch 1: a tenth)")
    args = parser.parse_args()
    served_pushes(args.changes)
    with tempfile.TemporaryDirectory() as tmp:
        async with bench_services(Path(tmp) if args.sqlite else None) as (services, listener):
            await seed(services)
            await scenario(services, listener, "owned", owned_batch, args.batches)
            await scenario(services, listener, "shared", shared_batch, args.batches)
            await scenario(services, listener, "mixed", mixed_batch, args.batches)
        async with bench_services(Path(tmp) if args.sqlite else None, anomaly_flags=False) as (services, listener):
            await seed(services)
            await scenario(services, listener, "mixed.no_flagging", mixed_batch, args.batches)
    for size, pushes in ((1, 2000), (50, 100), (500, 10)):
        flagging_cpu(size, pushes)
    crdt_merge_costs()


if __name__ == "__main__":
    asyncio.run(main())
