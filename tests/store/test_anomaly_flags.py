"""Flags on the real store: written with the push, baselines kept across a restart, a fixed cost per push."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from service.app import build_services
from service.domain.anomalies import AnomalyCode
from service.domain.anomalies.query import AnomalyPage, AnomalyQuery
from service.domain.record_types import RecordType
from service.services import Services
from service.settings import Settings
from service.store import anomalies, anomaly_baselines, history
from service.store.database import Store
from tests.factories import change, order_fields
from tests.store.watched import Commands, watched_store, writes_in_one_command

OUTLET, PRODUCT, ORDER, VISIT = RecordType.OUTLET, RecordType.PRODUCT, RecordType.ORDER, RecordType.VISIT


async def seed(services: Services) -> None:
    outlet = {"name": "Kedai Ali", "latitude": 3.139, "longitude": 101.6869, "repIds": ["rep1"]}
    await services.sync.write_record(OUTLET, "o1", outlet, None, user_id="hq")
    await services.sync.write_record(PRODUCT, "p1", {"sku": "M1", "name": "Milo", "unitPrice": 3.5}, None, user_id="hq")


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


async def test_flags_commit_with_the_push_and_what_was_learned_survives_a_restart(settings: Settings, store: Store):
    services = build_services(settings, store)
    await seed(services)
    broken = change(
        ORDER, "or1", order_fields("o1", ("p1", 2)), captured_at=minutes_ago(3), latitude=0.0, longitude=0.0
    )
    await services.sync.push([broken], device_id="dev1", rep_id="rep1")
    [flag] = [anomalies.from_document(d) for d in await store.db[anomalies.COLLECTION].find().to_list()]
    assert (flag.code, flag.record_id, flag.rep_id, flag.device_id) == (
        AnomalyCode.GEO_NULL_ISLAND,
        "or1",
        "rep1",
        "dev1",
    )
    [event] = await store.db[history.COLLECTION].find({"action": "ANOMALY_FLAGGED"}).to_list()
    assert event["detail"] == {"anomalyId": flag.id, "code": "GEO_NULL_ISLAND", "severity": "MEDIUM"}
    assert event["offlineId"] == broken.offline_id

    restarted = build_services(settings, store)  # a new process on the same store
    phantom = change(ORDER, "or2", order_fields("o1", ("p1", 2)), captured_at=minutes_ago(1))
    await restarted.sync.push([phantom], device_id="dev1", rep_id="rep1")
    found = await anomalies.page(store, AnomalyQuery(codes=(AnomalyCode.CONTENT_DUPLICATE,)), None, 10)
    assert [(a.record_id, a.evidence["duplicateOf"]) for a in found.anomalies] == [("or2", "or1")]
    learned, _ = await anomaly_baselines.load(store, "rep1", "dev1", None)
    assert len(learned.rep.delays) == 2 and [o.record_id for o in learned.rep.orders] == ["or1", "or2"]


async def test_a_reviewed_flag_is_recorded_in_the_history(settings: Settings, store: Store):
    services = build_services(settings, store)
    await seed(services)
    broken = change(
        VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}, captured_at=minutes_ago(2), latitude=0.0, longitude=0.0
    )
    await services.sync.push([broken], device_id="dev1", rep_id="rep1")
    [flag] = (await services.anomalies.page(None, AnomalyQuery(), None, 10)).anomalies
    dismissed = await services.anomalies.review(flag.id, flag.status.DISMISSED, "GPS off in the basement", "user:mia")
    assert dismissed is not None and (dismissed.status.value, dismissed.note) == (
        "DISMISSED",
        "GPS off in the basement",
    )
    [event] = await store.db[history.COLLECTION].find({"action": "ANOMALY_DISMISSED"}).to_list()
    assert event["actorId"] == "user:mia" and event["detail"]["note"] == "GPS off in the basement"
    assert await services.anomalies.page("rep2", AnomalyQuery(), None, 10) == AnomalyPage([], False, 0)


async def test_flagging_costs_the_same_few_round_trips_whatever_the_size_of_the_push(
    settings: Settings, store: Store, embedded: bool
):
    commands = Commands()
    costs: dict[tuple[bool, int], int] = {}
    async with watched_store(settings, embedded, commands) as watched:
        # a find, and a bulk write unless the push's writes go in one command
        flagging_costs = 1 if await writes_in_one_command(watched) else 2
        for flagging in (True, False):
            services = build_services(dataclasses.replace(settings, anomaly_flags=flagging), watched)
            await seed(services)
            for size in (1, 50):
                queue = [
                    change(
                        VISIT,
                        f"v-{flagging}-{size}-{n}",
                        {"outletId": "o1", "status": "PLANNED"},
                        captured_at=minutes_ago(1),
                    )
                    for n in range(size)
                ]
                commands.names.clear()
                await services.sync.push(queue, device_id=f"d-{flagging}-{size}", rep_id="rep1")
                costs[(flagging, size)] = len(commands.names)
    assert costs[(True, 1)] - costs[(False, 1)] == costs[(True, 50)] - costs[(False, 50)] == flagging_costs


async def test_baselines_another_instance_changed_since_they_were_remembered_are_read_again(
    settings: Settings, store: Store
):
    first, second = build_services(settings, store), build_services(settings, store)  # two instances, one store
    await seed(first)
    for n, services in enumerate((first, first, second, first, second)):
        order = change(ORDER, f"or{n}", order_fields("o1", ("p1", n + 1)), captured_at=minutes_ago(5 - n))
        [outcome] = (await services.sync.push([order], device_id="dev1", rep_id="rep1")).outcomes
        assert outcome.status.value == "APPLIED"
    learned, _ = await anomaly_baselines.load(store, "rep1", "dev1", None)
    assert len(learned.rep.delays) == 5  # no push's learning lost: each wrote over what the one before wrote
    assert [o.record_id for o in learned.rep.orders] == ["or0", "or1", "or2", "or3", "or4"]
