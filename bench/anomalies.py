"""Anomaly flags on a labelled synthetic month: precision and recall per code.

    python -m bench.anomalies [--seed 13] [--reps 8] [--days 30]

A deterministic generator (same seed, same month) plays reps working a month of visits,
orders and work orders around their home cities, each with its own way of syncing
(after every visit, at lunch and in the evening, or only in the evening), with GPS noise,
legitimate trips (a flight to another city, a drive between cities) and a few minutes of
clock drift. Into it it injects anomalies at known places: stamps that jump hundreds of
kilometres, stamps at 0, 0, coordinates copied from another outlet, days without a sync,
a queue that grows for days, orders on cancelled or someone else's visits, visits checked in
or completed again, hours after completion, phantom orders and clocks running ahead.
Every push goes through the service's own flagging (``flag_push``) with the baselines it
learned, as a push does. A flag matches a label of its code (the change it names, or for
QUEUE_GROWING and CLOCK_SKEW the device episode it falls in).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.harness import report
from service.domain.anomalies import (
    Anomaly,
    AnomalyCode,
    AnomalyThresholds,
    Baselines,
    DeviceBaseline,
    PushFacts,
    RepBaseline,
    flag_push,
)
from service.domain.changes import Change, Operation
from service.domain.outcomes import ChangeStatus, Outcome
from service.domain.record_types import RecordType
from service.domain.records import Record, RecordKey

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday; the month spans Europe's DST change (29 March)
CITIES = [(3.139, 101.687), (1.352, 103.820), (13.756, 100.502), (14.599, 120.984), (-6.208, 106.846)]
KM = 1 / 111.2  # degrees of latitude in a kilometre
VISIT, ORDER, WORK_ORDER = RecordType.VISIT, RecordType.ORDER, RecordType.WORK_ORDER
EPISODIC = {AnomalyCode.QUEUE_GROWING, AnomalyCode.CLOCK_SKEW}


@dataclass
class Rep:
    id: str
    home: tuple[float, float]
    style: str  # "visit": push after every visit; "twice": lunch and evening; "evening"
    outlets: dict[str, tuple[float, float]]
    baselines: Baselines
    queue: list[Change] = field(default_factory=list)
    queue_stuck: bool = False  # the device's pushes go nowhere (QUEUE_GROWING episode)
    skew: timedelta = timedelta(0)  # the device clock's error
    offline_until: datetime | None = None


@dataclass
class Month:
    labels: dict[AnomalyCode, set[str]] = field(default_factory=lambda: defaultdict(set))
    episodes: dict[AnomalyCode, list[tuple[str, datetime, datetime]]] = field(default_factory=lambda: defaultdict(list))
    flags: list[Anomaly] = field(default_factory=list)
    records: dict[RecordKey, Record] = field(default_factory=dict)
    changes: int = 0
    pushes: int = 0
    flag_seconds: float = 0.0


class Generator:
    def __init__(self, seed: int, reps: int, days: int) -> None:
        self.rng = random.Random(seed)
        self.days = days
        self.month = Month()
        self.thresholds = AnomalyThresholds()
        self.ids = iter(range(1, 10**9))
        styles = ["visit", "twice", "evening"]
        self.reps = [self._rep(n, styles[n % 3]) for n in range(reps)]

    def _rep(self, n: int, style: str) -> Rep:
        home = CITIES[n % len(CITIES)]
        outlets = {f"o{n}-{k}": self._near(home, 25) for k in range(12)}
        return Rep(f"rep{n}", home, style, outlets, Baselines(RepBaseline(f"rep{n}"), DeviceBaseline(f"dev{n}")))

    def _near(self, at: tuple[float, float], km: float) -> tuple[float, float]:
        angle, distance = self.rng.uniform(0, 2 * math.pi), self.rng.uniform(0, km)
        return (
            at[0] + distance * KM * math.sin(angle),
            at[1] + distance * KM * math.cos(angle) / math.cos(math.radians(at[0])),
        )

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    # -- a rep's day --------------------------------------------------------------

    def run(self) -> Month:
        plans = self._inject_episodes()
        for day in range(self.days):
            date = START + timedelta(days=day)
            if date.weekday() == 6:
                continue
            for rep in self.reps:
                self._day(rep, date, plans.get((rep.id, day), set()))
        return self.month

    def _inject_episodes(self) -> dict[tuple[str, int], set[str]]:
        """Which rep gets which day-long incident (a few of each, spread over the month)."""
        plans: dict[tuple[str, int], set[str]] = defaultdict(set)
        kinds = ["jump", "null", "repeat", "cancelled", "again", "hours", "phantom", "other", "flight"]
        for rep in self.reps:
            for kind in kinds:
                for day in self.rng.sample(range(6, self.days - 1), 2):
                    plans[(rep.id, day)].add(kind)
        for index, rep in enumerate(self.reps):
            start = 8 + index % 3 * 6
            for kind, length in (("offline", 3), ("stuck", 5), ("skew", 4)):
                start = start + length + 1
                if start + length < self.days:
                    for day in range(start, start + length):
                        plans[(rep.id, day)].add(kind)
        return plans

    def _day(self, rep: Rep, date: datetime, plan: set[str]) -> None:
        rep.skew = timedelta(minutes=self.rng.uniform(-3, 3))
        if "skew" in plan:
            rep.skew = timedelta(minutes=45)
            self._episode(AnomalyCode.CLOCK_SKEW, rep, date, date + timedelta(days=1))
        if "offline" in plan and rep.offline_until is None:
            rep.offline_until = date + timedelta(days=3, hours=12)
        if rep.queue_stuck and "stuck" not in plan and rep.queue:  # what was stuck arrives days late
            self._label(AnomalyCode.SYNC_DELAY, min(rep.queue, key=lambda c: c.captured_at))
        rep.queue_stuck = "stuck" in plan
        if rep.queue_stuck:
            self._episode(AnomalyCode.QUEUE_GROWING, rep, date, date + timedelta(days=1))
        now = date + timedelta(hours=8, minutes=self.rng.uniform(0, 40))
        where = rep.home
        if "flight" in plan:  # the morning in another city: the gap is a flight's
            city = self.rng.choice([c for c in CITIES if c != rep.home])
            where = city
            now += timedelta(hours=4)
        outlets = self.rng.sample(sorted(rep.outlets), self.rng.randint(5, 7))
        incidents = sorted(plan & {"jump", "null", "repeat", "cancelled", "again", "hours", "phantom", "other"})
        at_visit = {kind: self.rng.randrange(1, len(outlets)) for kind in incidents}
        last_outlet = None
        for index, outlet_id in enumerate(outlets):
            outlet = rep.outlets[outlet_id] if "flight" not in plan else self._near(where, 20)
            now += timedelta(minutes=self.rng.uniform(25, 45))
            today = {kind for kind, n in at_visit.items() if n == index}
            now = self._visit(rep, outlet_id, outlet, now, today, last_outlet)
            last_outlet = (outlet_id, outlet)
            if rep.style == "visit" or (rep.style == "twice" and index == len(outlets) // 2):
                now += timedelta(minutes=self.rng.uniform(2, 8))
                self._push(rep, now)
        self._push(rep, now + timedelta(minutes=self.rng.uniform(2, 8)))

    def _visit(
        self,
        rep: Rep,
        outlet_id: str,
        outlet: tuple[float, float],
        at: datetime,
        incidents: set[str],
        last: tuple[str, tuple[float, float]] | None,
    ) -> datetime:
        """One visit from ``at``; returns when it ended."""
        visit_id = self._id("v")
        stamp = self._near(outlet, 0.03)
        check_in = self._change(rep, VISIT, visit_id, at, stamp, status="CHECKED_IN", outletId=outlet_id)
        if "jump" in incidents:
            check_in = self._stamped(check_in, self._near(outlet, 0)[0] + self.rng.uniform(250, 900) * KM, stamp[1])
            self._label(AnomalyCode.GEO_JUMP, check_in)
        elif "null" in incidents:
            check_in = self._stamped(check_in, 0.0, 0.0)
            self._label(AnomalyCode.GEO_NULL_ISLAND, check_in)
        elif "repeat" in incidents and last is not None:
            earlier = self._last_stamp(rep)
            if earlier is not None:
                check_in = self._stamped(check_in, *earlier)
                self._label(AnomalyCode.GEO_REPEATED, check_in)
        rep.queue.append(check_in)
        minutes = timedelta(minutes=self.rng.uniform(10, 20))
        order = self._order(rep, outlet_id, visit_id, at + minutes / 2, self._near(outlet, 0.03))
        if "cancelled" in incidents:
            cancelled = self._change(
                rep, VISIT, visit_id, at + minutes / 3, stamp, status="CANCELLED", outletId=outlet_id
            )
            rep.queue.append(cancelled)
            rep.queue.append(order)
            self._label(AnomalyCode.CONTRADICTION, order)
            return at + minutes
        if "other" in incidents:
            others = [k for k, r in self.month.records.items() if k[0] is VISIT and r.owner not in (None, rep.id)]
            if others:
                order = self._order(rep, outlet_id, self.rng.choice(sorted(others))[1], at + minutes / 2, stamp)
                self._label(AnomalyCode.CONTRADICTION, order)
        rep.queue.append(order)
        if "phantom" in incidents:
            phantom = self._order(rep, outlet_id, visit_id, at + minutes / 2 + timedelta(minutes=2), stamp, order)
            rep.queue.append(phantom)
            self._label(AnomalyCode.CONTENT_DUPLICATE, phantom)
        done = at + minutes
        completed = self._change(
            rep,
            VISIT,
            visit_id,
            done,
            self._near(outlet, 0.03),
            status="COMPLETED",
            outletId=outlet_id,
            completedAt=(done + rep.skew).isoformat(),
        )
        rep.queue.append(completed)
        if "again" in incidents:
            again = self._change(
                rep,
                VISIT,
                visit_id,
                done + timedelta(minutes=3),
                self._near(outlet, 0.03),
                status="CHECKED_IN",
                outletId=outlet_id,
            )
            rep.queue.append(again)
            self._label(AnomalyCode.CONTRADICTION, again)
        if "hours" in incidents or self.rng.random() < 0.2:
            self._work_order(rep, outlet_id, done, self._near(outlet, 0.03), late="hours" in incidents)
        return done + timedelta(minutes=3 if "again" in incidents else 0)

    def _work_order(self, rep: Rep, outlet_id: str, at: datetime, stamp: tuple[float, float], *, late: bool) -> None:
        completed = at + rep.skew
        logged = completed + timedelta(minutes=20 if late else -30)
        change = self._change(
            rep,
            WORK_ORDER,
            self._id("w"),
            at,
            stamp,
            outletId=outlet_id,
            status="COMPLETED",
            completedAt=completed.isoformat(),
            resourceHours=[{"hours": 1.5, "loggedAt": logged.isoformat()}],
        )
        rep.queue.append(change)
        if late:
            self._label(AnomalyCode.CONTRADICTION, change)

    def _order(
        self,
        rep: Rep,
        outlet_id: str,
        visit_id: str,
        at: datetime,
        stamp: tuple[float, float],
        like: Change | None = None,
    ) -> Change:
        lines = (
            (like.fields or {})["lines"]
            if like
            else [
                {"productId": f"p{self.rng.randrange(40)}", "quantity": self.rng.randint(1, 12)}
                for _ in range(self.rng.randint(1, 4))
            ]
        )
        return self._change(
            rep, ORDER, self._id("or"), at, stamp, outletId=outlet_id, visitId=visit_id, lines=lines, status="SUBMITTED"
        )

    def _change(
        self, rep: Rep, record_type: RecordType, record_id: str, at: datetime, stamp: tuple[float, float], **fields: Any
    ) -> Change:
        known = self.month.records.get((record_type, record_id))
        return Change(
            offline_id=self._id("off"),
            record_type=record_type,
            record_id=record_id,
            operation=Operation.UPSERT,
            captured_at=at + rep.skew,
            base_version=known.version if known else None,
            fields=fields,
            latitude=stamp[0],
            longitude=stamp[1],
        )

    @staticmethod
    def _stamped(change: Change, latitude: float, longitude: float) -> Change:
        return Change(**{**change.__dict__, "latitude": latitude, "longitude": longitude})

    def _last_stamp(self, rep: Rep) -> tuple[float, float] | None:
        stamped = [c for c in rep.queue if c.latitude is not None and (c.fields or {}).get("outletId")]
        if not stamped:
            trusted = rep.baselines.device.trusted
            return (trusted.latitude, trusted.longitude) if trusted else None
        last = stamped[-1]
        assert last.latitude is not None and last.longitude is not None
        return last.latitude, last.longitude

    def _label(self, code: AnomalyCode, change: Change) -> None:
        self.month.labels[code].add(change.offline_id)

    def _episode(self, code: AnomalyCode, rep: Rep, start: datetime, end: datetime) -> None:
        """An incident on a device from ``start``; its flag may come up to two days after ``end``."""
        episodes = self.month.episodes[code]
        mine = [n for n, (rep_id, _, _) in enumerate(episodes) if rep_id == rep.id]
        if mine and episodes[mine[-1]][2] >= start:
            n = mine[-1]
            episodes[n] = (rep.id, episodes[n][1], end + timedelta(days=2))  # the same episode goes on
        else:
            episodes.append((rep.id, start, end + timedelta(days=2)))

    # -- pushes ---------------------------------------------------------------------

    def _push(self, rep: Rep, received: datetime) -> None:
        if rep.offline_until is not None:
            if received < rep.offline_until:
                return
            rep.offline_until = None
            oldest = min(rep.queue, key=lambda c: c.captured_at)
            self._label(AnomalyCode.SYNC_DELAY, oldest)
        changes, rep.queue = (rep.queue, []) if not rep.queue_stuck else ([], rep.queue)
        outcomes = [
            Outcome(c.offline_id, ChangeStatus.APPLIED, record=self._record(rep, c, received), stored=True)
            for c in changes
        ]
        facts = PushFacts(self._id("sync"), rep.baselines.device.device_id, rep.id, received, len(rep.queue))
        started = time.process_time()
        flagging = flag_push(changes, outcomes, self.month.records, rep.baselines, facts, self.thresholds)
        self.month.flag_seconds += time.process_time() - started
        rep.baselines = flagging.baselines
        self.month.flags += flagging.anomalies
        for outcome in outcomes:
            assert outcome.record is not None
            self.month.records[outcome.record.key] = outcome.record
        self.month.changes += len(changes)
        self.month.pushes += 1

    def _record(self, rep: Rep, change: Change, received: datetime) -> Record:
        known = self.month.records.get(change.key)
        return Record(
            change.record_type,
            change.record_id,
            (known.version if known else 0) + 1,
            {"repId": rep.id, **(change.fields or {})},
            updated_at=received,
            updated_by=rep.baselines.device.device_id,
            owner=known.owner if known else rep.id,
        )


@dataclass(frozen=True)
class Score:
    labels: int
    flags: int
    true_flags: int  # flags that match a label
    found: int  # labels some flag matches

    @property
    def precision(self) -> float:
        return self.true_flags / self.flags if self.flags else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.labels if self.labels else 1.0


def score(month: Month, code: AnomalyCode) -> Score:
    flags = [f for f in month.flags if f.code is code]
    if code in EPISODIC:
        episodes = month.episodes[code]
        matches = [
            {n for n, (rep, start, end) in enumerate(episodes) if f.rep_id == rep and start <= f.flagged_at <= end}
            for f in flags
        ]
        return Score(len(episodes), len(flags), sum(1 for m in matches if m), len(set().union(*matches)))
    labels = month.labels[code]
    return Score(
        len(labels),
        len(flags),
        sum(1 for f in flags if f.offline_id in labels),
        len({f.offline_id for f in flags} & labels),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    month = Generator(args.seed, args.reps, args.days).run()
    print(f"{'code':<18} {'labels':>6} {'flags':>6} {'precision':>9} {'recall':>7}")
    for code in AnomalyCode:
        got = score(month, code)
        print(f"{code.value:<18} {got.labels:>6} {got.flags:>6} {got.precision:>9.3f} {got.recall:>7.3f}")
        report(
            "anomalies.eval",
            code=code.value,
            labels=got.labels,
            flags=got.flags,
            precision=round(got.precision, 3),
            recall=round(got.recall, 3),
        )
    report(
        "anomalies.month",
        seed=args.seed,
        reps=args.reps,
        days=args.days,
        pushes=month.pushes,
        changes=month.changes,
        flags=len(month.flags),
        flagging_us_per_change=round(month.flag_seconds / max(month.changes, 1) * 1e6, 1),
    )


if __name__ == "__main__":
    main()
