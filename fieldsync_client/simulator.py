"""``fieldsync simulate``: reps with phones run a field day through the reference client.

Everything a rep, a phone, the network and the manager do is drawn from one seeded
``random.Random``, one actor at a time, so a seed replays the same day (ids carry a run
prefix so that days can be simulated again on the same server). The day is the last few
hours before now, in steps; device clocks run a few minutes off. ``check`` then verifies
the invariants against the server.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from fieldsync_client.client import PULL, Device, outlet_fields
from fieldsync_client.flaky import FlakyNetwork
from fieldsync_client.transport import Offline, Transport

LOCAL = timezone(timedelta(hours=8))
CENTRE = (3.139, 101.687)
GEOFENCE_M = 150
STEP = timedelta(minutes=20)  # one step of the simulated day
BACKOFF = 0.02  # seconds: simulated phones back off fast (Retry-After is still waited in full)
DECIDING = ["APPLIED", "MERGED", "UNCHANGED", "CONFLICT"]
WRITE = """mutation($i: WriteRecordInput!) { writeRecord(input: $i) { status refusal { code reason } } }"""
RECORD = "query($t: RecordType!, $id: ID!) { record(recordType: $t, recordId: $id) { version fields } }"
PHOTOS = "query($id: ID!) { record(recordType: VISIT, recordId: $id) { photos { attachmentId status } } }"
HISTORY = """query($f: SyncHistoryFilter, $after: String) { syncHistory(filter: $f, first: 500, after: $after) {
  edges { node { offlineId action } } pageInfo { hasNextPage endCursor } } }"""
OPEN_REFUSALS = """query($after: String) { refusals(filter: {status: [OPEN], kind: RECORD}, first: 100, after: $after) {
  edges { node { id code related { recordType recordId } } } pageInfo { hasNextPage endCursor } } }"""


@dataclass
class Rep:
    id: str
    name: str
    phone: Device
    clock_skew: timedelta
    outlets: list[str] = field(default_factory=list)
    work_orders: list[str] = field(default_factory=list)


@dataclass
class Day:
    reps: int = 4
    outlets: int = 6
    products: int = 4
    steps: int = 8
    seed: int = 1
    faults: bool = True
    online: float = 0.6  # chance a phone has signal at a step
    settle: bool = True  # at the end, dismiss what is still refused and sync every phone until quiet
    speed: float = 0.0  # simulated time over wall time (60: a 20-minute step takes 20 s); 0: no waiting


class Simulation:
    def __init__(self, url: str, admin_token: str, day: Day, state_dir: Path | None = None) -> None:
        self.url = url
        self.day = day
        self.rng = random.Random(day.seed)
        self.run = uuid.uuid4().hex[:6]
        self.admin = Transport(url, admin_token, backoff_base=BACKOFF)
        self._tmp = None if state_dir else tempfile.TemporaryDirectory(prefix="fieldsync-sim-")
        self.state_dir = state_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.start = datetime.now(UTC) - timedelta(minutes=20 * (day.steps + 1))
        self.now = self.start
        self.reps: list[Rep] = []
        self.outlets: list[dict[str, Any]] = []
        self.products: list[str] = []
        self.planned: dict[str, str] = {}  # visit id -> rep id (as the manager assigned it)
        self.photos: dict[str, str] = {}  # attachmentId -> the visit a phone pointed at it from
        self.summary: Counter[str] = Counter()
        self.networks: list[FlakyNetwork] = []

    # -- set-up: the manager's morning ----------------------------------------------

    def setup(self) -> None:
        manager = self.admin.execute('mutation { createUser(input: {name: "Sim Manager", role: MANAGER}) { token } }')
        self.manager = Transport(self.url, manager["createUser"]["token"], backoff_base=BACKOFF)
        for index in range(self.day.products):
            product_id = self._id("product")
            self._write(
                "PRODUCT",
                product_id,
                {
                    "sku": f"SKU-{index}",
                    "name": f"Product {index}",
                    "unitPrice": round(self.rng.uniform(1, 30), 2),
                    "active": True,
                },
            )
            self.products.append(product_id)
        for index in range(self.day.reps):
            self.reps.append(self._rep(index))
        for index in range(self.day.outlets):
            assigned = self.rng.sample(self.reps, k=min(len(self.reps), self.rng.choice((1, 2, 2, 3))))
            outlet: dict[str, Any] = {
                "id": self._id("outlet"),
                "name": f"Kedai {index}",
                "latitude": round(CENTRE[0] + self.rng.uniform(-0.05, 0.05), 6),
                "longitude": round(CENTRE[1] + self.rng.uniform(-0.05, 0.05), 6),
            }
            self._write(
                "OUTLET",
                outlet["id"],
                {
                    "name": outlet["name"],
                    "latitude": outlet["latitude"],
                    "longitude": outlet["longitude"],
                    "geofenceRadiusM": GEOFENCE_M,
                    "active": True,
                    "repIds": [r.id for r in assigned],
                },
            )
            self.outlets.append(outlet)
            for rep in assigned:
                rep.outlets.append(outlet["id"])
                self._plan_visit(rep, outlet["id"])
        for rep in self.reps:
            if rep.outlets and self.rng.random() < 0.7:
                work_order = self._id("wo")
                self._write(
                    "WORK_ORDER",
                    work_order,
                    {
                        "outletId": rep.outlets[0],
                        "repId": rep.id,
                        "status": "OPEN",
                        "description": "Service the chiller",
                        "resourceHours": [],
                    },
                )
                rep.work_orders.append(work_order)

    def _rep(self, index: int) -> Rep:
        name = f"Rep {index}"
        created = self.admin.execute(
            "mutation($i: CreateUserInput!) { createUser(input: $i) { user { id } token } }",
            {"i": {"name": f"{name} ({self.run})", "role": "REP"}},
        )["createUser"]
        device_id = f"{self.run}-phone-{index}"
        rep_transport = Transport(self.url, created["token"], backoff_base=BACKOFF)
        token = rep_transport.execute(
            "mutation($i: RegisterDeviceInput!) { registerDevice(input: $i) { token } }",
            {"i": {"deviceId": device_id, "name": f"{name}'s phone", "platform": "android", "appVersion": "sim"}},
        )["registerDevice"]["token"]
        rep_transport.close()
        rng = random.Random(self.rng.random())
        network = FlakyNetwork(rng, lose_request=0.08, lose_answer=0.12, send_twice=0.08) if self.day.faults else None
        if network:
            self.networks.append(network)
        transport = Transport(
            self.url,
            token,
            http=httpx.Client(transport=network, timeout=60),
            backoff_base=BACKOFF,
            rng=rng,
            max_attempts=12,
        )
        skew = timedelta(seconds=self.rng.randint(-8 * 60, 8 * 60))
        phone = Device(
            transport,
            device_id,
            self.state_dir / f"{device_id}.json",
            on_conflict=lambda conflict: rng.choice(("OVERWRITE", "DISCARD")),
            clock=lambda: (self.now + skew).astimezone(LOCAL),
            yjs_client_id=rng.getrandbits(31),
            clock_is_real=False,  # the day replays hours already past
        )
        return Rep(created["user"]["id"], name, phone, skew)

    def _plan_visit(self, rep: Rep, outlet_id: str) -> None:
        visit_id = self._id("visit")
        planned_at = (self.start + timedelta(minutes=self.rng.randint(30, 300))).astimezone(LOCAL).isoformat()
        self._write(
            "VISIT", visit_id, {"outletId": outlet_id, "repId": rep.id, "plannedAt": planned_at, "status": "PLANNED"}
        )
        self.planned[visit_id] = rep.id

    # -- the day ------------------------------------------------------------------------

    def run_day(self) -> None:
        for rep in self.reps:
            self._sync(rep)
        for _ in range(self.day.steps):
            started = time.monotonic()
            self.now += STEP
            for rep in self.reps:
                self._work(rep)
                if self.rng.random() < self.day.online:
                    self._sync(rep)
            self._manage()
            if self.day.speed > 0:  # the step's share of wall time, whatever it took to simulate
                time.sleep(max(0.0, STEP.total_seconds() / self.day.speed - (time.monotonic() - started)))
        if self.day.settle:
            self._close_the_day()

    def _work(self, rep: Rep) -> None:
        phone = rep.phone
        for visit_id, fields in sorted(phone.records("VISIT").items()):
            current = phone.view("VISIT", visit_id) or fields["fields"]
            if current["status"] == "PLANNED" and self.rng.random() < 0.5:
                outlet = self._outlet(current["outletId"])
                far = self.rng.random() < 0.12
                latitude = outlet["latitude"] + (0.03 if far else self.rng.uniform(-0.0004, 0.0004))
                longitude = outlet["longitude"] + self.rng.uniform(-0.0004, 0.0004)
                phone.save(
                    "VISIT",
                    visit_id,
                    {
                        **current,
                        "status": "CHECKED_IN",
                        "checkInAt": self._local(phone),
                        "checkInLatitude": round(latitude, 6),
                        "checkInLongitude": round(longitude, 6),
                    },
                    latitude=round(latitude, 6),
                    longitude=round(longitude, 6),
                )
                self.summary["check-ins" + (" far from the outlet" if far else "")] += 1
                return
            if current["status"] == "CHECKED_IN":
                shelf = phone.take_photo(self._photo(), latitude=current["checkInLatitude"],
                                         longitude=current["checkInLongitude"])  # fmt: skip
                self.photos[shelf["attachmentId"]] = visit_id
                completed = {"status": "COMPLETED", "completedAt": self._local(phone), "photos": [shelf]}
                phone.save("VISIT", visit_id, {**current, **completed})
                lines = [
                    {"productId": product, "quantity": self.rng.randint(1, 12), "unitPrice": 5.0}
                    for product in self.rng.sample(self.products, k=self.rng.randint(1, min(3, len(self.products))))
                ]
                phone.save(
                    "ORDER",
                    self._id("order"),
                    {
                        "outletId": current["outletId"],
                        "visitId": visit_id,
                        "repId": rep.id,
                        "status": "SUBMITTED",
                        "lines": lines,
                    },
                )
                self.summary["orders"] += 1
                return
        roll = self.rng.random()
        if roll < 0.35 and rep.outlets:
            self._edit_outlet(rep)
        elif roll < 0.6 and rep.work_orders:
            work_order = self.rng.choice(rep.work_orders)
            current = phone.view("WORK_ORDER", work_order)
            if current and current["status"] != "COMPLETED":
                hours = [
                    *current["resourceHours"],
                    {"hours": self.rng.choice((0.5, 1, 1.5)), "loggedAt": self._local(phone)},
                ]
                phone.save("WORK_ORDER", work_order, {**current, "status": "IN_PROGRESS", "resourceHours": hours})
                self.summary["work-order hours"] += 1

    def _edit_outlet(self, rep: Rep) -> None:
        outlet_id = self.rng.choice(rep.outlets)
        if rep.phone.view("OUTLET", outlet_id) is None:
            return
        choice = self.rng.randrange(3)
        if choice == 0:
            rep.phone.edit_outlet(outlet_id, {"contactName": f"Contact of {rep.name}"})
        elif choice == 1:
            rep.phone.edit_outlet(outlet_id, add_tags=(self.rng.choice(("halal", "24h", "cold-chain", "cash-only")),))
        else:
            rep.phone.edit_outlet(outlet_id, append_notes=f"{rep.name}: shelf checked. ")
        self.summary["outlet edits"] += 1

    def _manage(self) -> None:
        """The manager fixes data behind refusals (or dismisses them), edits records, reassigns a visit.

        A day that will not be settled (a demo) leaves its refusals for the console's user to fix.
        """
        for refusal in self._open_refusals() if self.day.settle else []:
            if refusal["code"] == "OUTSIDE_GEOFENCE" and self.rng.random() < 0.5:
                self._write("OUTLET", refusal["related"]["recordId"], {"geofenceRadiusM": 20000})
                self.summary["manager fixed an outlet's geofence"] += 1
            elif self.rng.random() < 0.7:
                self._dismiss(refusal["id"])
        roll = self.rng.random()
        if roll < 0.3:
            outlet = self.rng.choice(self.outlets)
            self._write("OUTLET", outlet["id"], {"phone": f"+60 3 {self.rng.randint(1000, 9999)}"})
            self.summary["manager outlet edits"] += 1
        elif roll < 0.55:
            visit_id = self.rng.choice(sorted(self.planned))
            current = self._record("VISIT", visit_id)
            self._write("VISIT", visit_id, {**current["fields"], "notes": "Call the owner first"}, current["version"])
            self.summary["manager visit edits"] += 1
        elif roll < 0.7 and len(self.reps) > 1:
            visit_id = self.rng.choice(sorted(self.planned))
            current = self._record("VISIT", visit_id)
            if current["fields"]["status"] == "PLANNED":
                owner = self.planned[visit_id]
                other = self.rng.choice([r for r in self.reps if r.id != owner])
                self._write("VISIT", visit_id, {**current["fields"], "repId": other.id}, current["version"])
                self.planned[visit_id] = other.id
                self.summary["visits reassigned"] += 1

    def _close_the_day(self) -> None:
        """Every phone gets signal: whatever is still refused is dismissed, and all phones sync until quiet."""
        self.now += STEP
        for _ in range(4):
            for refusal in self._open_refusals():
                self._dismiss(refusal["id"])
            for rep in self.reps:
                self._sync(rep)
            if not any(rep.phone.queue for rep in self.reps):
                break
        for rep in self.reps:  # a last pull, so every phone sees every other phone's final pushes
            self._sync(rep)

    def _sync(self, rep: Rep) -> None:
        try:
            stats = rep.phone.sync()
        except Offline:
            self.summary["syncs given up (no signal)"] += 1
            return
        self.summary["pushes"] += stats.pushes
        self.summary["conflicts"] += stats.conflicts
        self.summary["refusals"] += stats.refusals
        self.summary["removed by pull (outOfScope)"] += stats.removed
        self.summary["photos sent"] += stats.photos_sent
        self.summary["photos refused"] += len(stats.photos_refused)
        for status, count in stats.statuses.items():
            self.summary[f"status {status}"] += count

    # -- the checks ------------------------------------------------------------------------

    def check(self) -> list[str]:
        """The invariants, verified against the server; each failure is a sentence."""
        failures: list[str] = []
        for rep in self.reps:
            phone = rep.phone
            if phone.queue:
                failures.append(f"{phone.device_id} still holds {len(phone.queue)} changes")
            events = Counter(
                (node["offlineId"], node["action"])
                for node in self._history({"deviceId": phone.device_id, "actions": DECIDING})
            )
            held = Counter(phone.state["decided"].items())
            if events != held:
                failures.append(
                    f"{phone.device_id}: decided changes vs history differ: {dict(events - held)} "
                    f"in history only, {dict(held - events)} on the phone only"
                )
            dropped_in_history = [oid for oid, _ in events if oid in phone.state["dropped"]]
            if dropped_in_history:
                failures.append(f"{phone.device_id}: dropped changes decided on the server: {dropped_in_history}")
            scope = self._scope(phone)
            held_records = {key: value for key, value in phone.state["server"].items()}
            if scope != held_records:
                differ = sorted(set(scope) ^ set(held_records)) or sorted(
                    key for key in scope if scope[key] != held_records[key]
                )
                failures.append(f"{phone.device_id}: data differs from the server's scope: {differ[:5]}")
            for outlet_id, doc in phone.docs.items():
                if outlet_fields(doc) != held_records.get(f"OUTLET/{outlet_id}", {}).get("fields"):
                    failures.append(f"{phone.device_id}: outlet {outlet_id}'s Yjs document differs from the server")
        failures += self._check_photos()
        for outlet in self.outlets:
            copies = {
                rep.phone.device_id: outlet_fields(rep.phone.docs[outlet["id"]])
                for rep in self.reps
                if outlet["id"] in rep.phone.docs
            }
            server = self._record("OUTLET", outlet["id"])["fields"]
            for device_id, fields in copies.items():
                if fields != server:
                    failures.append(f"outlet {outlet['id']} on {device_id} differs from the server")
        return failures

    def _check_photos(self) -> list[str]:
        """No phone holds a photo back, and every photo a visit on the server points at has arrived."""
        failures = [f"{rep.phone.device_id} still holds {len(rep.phone.state['photos'])} photos"
                    for rep in self.reps if rep.phone.state["photos"]]  # fmt: skip
        for visit_id in sorted(set(self.photos.values())):
            record = self.manager.execute(PHOTOS, {"id": visit_id})["record"]
            for photo in (record or {}).get("photos") or []:
                if photo["status"] != "AVAILABLE":
                    failures.append(f"visit {visit_id}: photo {photo['attachmentId']} is {photo['status']}")
        return failures

    def _scope(self, phone: Device) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page = phone.transport.execute(PULL, {"deviceId": phone.device_id, "since": cursor, "limit": 500})["pull"]
            for envelope in page["records"]:
                key = f"{envelope['recordType']}/{envelope['recordId']}"
                if envelope["outOfScope"] or (envelope["deleted"] and envelope["recordType"] != "OUTLET"):
                    records.pop(key, None)
                else:
                    records[key] = {"version": envelope["version"], "fields": envelope["fields"]}
            cursor = page["cursor"]
            if not page["hasMore"]:
                return records

    def _history(self, history_filter: dict[str, Any]) -> Iterator[dict[str, Any]]:
        after = None
        while True:
            page = self.admin.execute(HISTORY, {"f": history_filter, "after": after})["syncHistory"]
            yield from (edge["node"] for edge in page["edges"])
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    def report(self) -> str:
        faults: Counter[str] = Counter()
        for network in self.networks:
            faults.update(network.faults)
        retries = sum(rep.phone.transport.retries for rep in self.reps)
        lines = [
            f"simulated day (seed {self.day.seed}, run {self.run}): {len(self.reps)} reps, "
            f"{len(self.outlets)} outlets, {self.day.steps} steps"
        ]
        lines += [f"  {name}: {count}" for name, count in sorted(self.summary.items())]
        lines += [f"  network: {name}: {count}" for name, count in sorted(faults.items())]
        lines.append(f"  requests sent again: {retries}")
        return "\n".join(lines)

    def close(self) -> None:
        for transport in [self.admin, getattr(self, "manager", None), *(rep.phone.transport for rep in self.reps)]:
            if transport is not None:
                transport.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- helpers ---------------------------------------------------------------------------

    def _write(self, record_type: str, record_id: str, fields: dict[str, Any], base: int | None = None) -> None:
        answer = self.manager.execute(
            WRITE, {"i": {"recordType": record_type, "recordId": record_id, "fields": fields, "baseVersion": base}}
        )["writeRecord"]
        self.summary[f"manager writes {answer['status']}"] += 1

    def _record(self, record_type: str, record_id: str) -> dict[str, Any]:
        return self.manager.execute(RECORD, {"t": record_type, "id": record_id})["record"]

    def _open_refusals(self) -> list[dict[str, Any]]:
        refusals, after = [], None
        while True:
            page = self.manager.execute(OPEN_REFUSALS, {"after": after})["refusals"]
            refusals += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return refusals
            after = page["pageInfo"]["endCursor"]

    def _dismiss(self, refusal_id: str) -> None:
        self.manager.execute(
            'mutation($id: ID!) { dismissRefusal(id: $id, note: "Handled in the office") { status } }',
            {"id": refusal_id},
        )
        self.summary["refusals dismissed"] += 1

    def _photo(self) -> bytes:
        """A shelf photo: a JPEG's first bytes, then 20-60 KB of the seeded generator's."""
        return b"\xff\xd8\xff\xe0" + self.rng.randbytes(self.rng.randint(20_000, 60_000))

    def _outlet(self, outlet_id: str) -> dict[str, Any]:
        return next(o for o in self.outlets if o["id"] == outlet_id)

    def _local(self, phone: Device) -> str:
        return phone.clock().isoformat()

    def _id(self, kind: str) -> str:
        return f"{self.run}-{kind}-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]}"
