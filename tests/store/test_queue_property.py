"""Property: whatever the chunking, retries and their spelling, and whenever the manager fixes,
dismisses or resolves, every offlineId is decided exactly once and the device's queue empties."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections import Counter
from datetime import timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.domain.changes import Change
from service.domain.conflicts import Resolution
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.domain.refusals import RefusalAction, RefusalStatus
from service.services import Services
from service.store import history, refusals
from tests.factories import T0, change

VISIT, OUTLET = RecordType.VISIT, RecordType.OUTLET
KINDS = ("new_visit", "missing_outlet", "conflicting_edit", "outlet_patch")
DECIDED = {"APPLIED", "MERGED", "UNCHANGED", "CONFLICT"}
EXAMPLES = itertools.count()


def respelled(original: Change, rng: random.Random) -> Change:
    """The same change as a retry may spell it: another UTC offset, integral numbers as floats."""
    zone = timezone(timedelta(minutes=rng.choice([-300, 0, 330, 480, 840])))
    fields = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in (original.fields or {}).items()
    }
    return dataclasses.replace(original, captured_at=original.captured_at.astimezone(zone), fields=fields)


def queue_of(kinds: list[str], p: str) -> list[Change]:
    queue = []
    for i, kind in enumerate(kinds):
        at = T0 + timedelta(minutes=i)
        offline_id = f"{p}-c{i}"
        match kind:
            case "new_visit":
                queue.append(
                    change(
                        VISIT,
                        f"{p}-v{i}",
                        {"outletId": f"{p}-o", "status": "PLANNED"},
                        offline_id=offline_id,
                        captured_at=at,
                    )
                )
            case "missing_outlet":
                queue.append(
                    change(
                        VISIT,
                        f"{p}-v{i}",
                        {"outletId": f"{p}-gone{i}", "status": "PLANNED"},
                        offline_id=offline_id,
                        captured_at=at,
                    )
                )
            case "conflicting_edit":
                fields = {"outletId": f"{p}-o", "status": "CHECKED_IN", "notes": f"edit {i}"}
                queue.append(
                    change(VISIT, f"{p}-shared", fields, offline_id=offline_id, base_version=1, captured_at=at)
                )
            case "outlet_patch":
                queue.append(
                    change(OUTLET, f"{p}-o", {"geofenceRadiusM": 100 + i}, offline_id=offline_id, captured_at=at)
                )
    return queue


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=3, max_size=7), rng=st.randoms(use_true_random=False))
async def test_every_offline_id_is_decided_once_and_the_queue_empties(services: Services, kinds, rng):
    sync = services.sync
    p = f"x{next(EXAMPLES)}"
    device = f"{p}-dev"
    await sync.write_record(
        OUTLET, f"{p}-o", {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6}, None, user_id="hq"
    )
    await sync.write_record(
        VISIT, f"{p}-shared", {"outletId": f"{p}-o", "status": "PLANNED", "repId": "rep1"}, None, user_id="hq"
    )
    await sync.write_record(
        VISIT,
        f"{p}-shared",
        {"outletId": f"{p}-o", "status": "PLANNED", "repId": "rep1", "notes": "office"},
        1,
        user_id="hq",
    )

    pending = queue_of(kinds, p)
    originals = {c.offline_id: c for c in pending}
    lost = 0
    for round_ in range(40):
        if not pending:
            break
        size = rng.randint(1, len(pending))
        sent = [respelled(c, rng) if rng.random() < 0.5 else c for c in pending[:size]]
        result = await sync.push(sent, device_id=device, rep_id="rep1")
        if lost < 3 and rng.random() < 0.3:
            lost += 1
            continue  # the answer was lost: the device sends the same changes again
        keep = set()
        for outcome in result.outcomes:
            refusal = outcome.refusal
            assert refusal is None or refusal.code != "OFFLINE_ID_REUSED", refusal
            open_fix = (
                refusal is not None
                and refusal.status is RefusalStatus.OPEN
                and refusal.action is RefusalAction.FIX_DATA
            )
            if outcome.status is ChangeStatus.BLOCKED or open_fix:
                keep.add(outcome.offline_id)
        pending = [c for c in pending[:size] if c.offline_id in keep] + pending[size:]
        await manager_acts(services, device, rng, everything=round_ % 4 == 3)

    assert pending == [], "the queue did not empty once everything behind it was fixed, dismissed or resolved"
    await assert_decided_once(services, device, list(originals))


async def manager_acts(services: Services, device: str, rng: random.Random, *, everything: bool) -> None:
    """Between pushes the manager fixes or dismisses some open refusals and resolves some conflicts
    (every one of them, now and then: a backlog gets cleared)."""
    db = services.store.db
    for document in await db[refusals.COLLECTION].find({"deviceId": device, "status": "OPEN"}).to_list():
        if not everything and rng.random() < 0.5:
            continue
        if rng.random() < 0.5:
            await services.sync.close_refusal(
                document["_id"], acknowledge=False, actor_id="user:hq", may_close=lambda r: True, note="not needed"
            )
        else:
            outlet_id = document["related"]["recordId"]
            await services.sync.write_record(
                OUTLET, outlet_id, {"name": "Kedai Baru", "latitude": 3.2, "longitude": 101.7}, None, user_id="hq"
            )
    for conflict in await db["conflicts"].find({"deviceId": device, "status": "OPEN"}).to_list():
        if everything or rng.random() < 0.6:
            resolution = rng.choice([Resolution.OVERWRITE, Resolution.DISCARD])
            await services.sync.resolve_conflict(
                conflict["_id"], resolution, resolver="user:hq", may_resolve=lambda c: True
            )


async def assert_decided_once(services: Services, device: str, offline_ids: list[str]) -> None:
    events = (
        await services.store.db[history.COLLECTION]
        .find({"deviceId": device, "action": {"$in": sorted(DECIDED)}})
        .to_list()
    )
    decided = Counter(event["offlineId"] for event in events)
    closed = {
        document["offlineId"]
        for document in await services.store.db[refusals.COLLECTION]
        .find({"deviceId": device, "status": "DISMISSED"})
        .to_list()
    }
    for offline_id in offline_ids:
        assert decided[offline_id] + (offline_id in closed) == 1, (
            offline_id,
            decided[offline_id],
            offline_id in closed,
        )
