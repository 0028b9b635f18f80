"""Outlet scope on the real store: assigned reps at the top level, one scope query per push chunk."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo import monitoring

from service.app import build_services
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.services import Services
from service.settings import Settings
from service.store import records
from service.store.database import Store, connect
from tests.factories import change

OUTLET, VISIT = RecordType.OUTLET, RecordType.VISIT


class RecordFinds(monitoring.CommandListener):
    """The filters of the finds run on the records collection."""

    def __init__(self) -> None:
        self.filters: list[dict] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == records.COLLECTION:
            self.filters.append(dict(event.command.get("filter", {})))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def watched(store: Store, settings: Settings, embedded: bool) -> AsyncIterator[tuple[Services, RecordFinds]]:
    """Services on a second client of the same database, whose record finds are recorded."""
    finds = RecordFinds()
    assert settings.mongodb_uri is not None
    other = connect(settings.mongodb_uri, settings.database, embedded=embedded, event_listeners=[finds])
    try:
        yield build_services(settings, other), finds
    finally:
        await other.close()


async def test_an_outlet_document_names_its_assigned_reps_and_its_creator_at_the_top_level(services: Services):
    await services.sync.write_record(OUTLET, "o1", {"name": "Kedai Ali", "repIds": ["ali", "siti"]}, None, user_id="hq")
    await services.sync.push([change(OUTLET, "o2", {"name": "Kedai Baru"})], device_id="d1", rep_id="nur")
    await services.sync.write_record(OUTLET, "o2", {"repIds": ["ali"]}, None, user_id="hq")
    documents = await services.store.db[records.COLLECTION].find({}, {"reps": 1, "creatorRep": 1}).to_list()
    assert sorted((d["_id"], d["reps"], d["creatorRep"]) for d in documents) == [
        ("OUTLET:o1", ["ali", "siti"], None),
        ("OUTLET:o2", ["ali", "nur"], "nur"),
    ]


def scope_queries(finds: RecordFinds) -> list[dict]:
    return [query for query in finds.filters if "refs" in query]


async def test_a_push_chunk_asks_for_its_scope_once_whatever_the_number_of_outlets(watched):
    services, finds = watched
    for n in range(30):  # outlets in ali's scope only through visits a manager assigned to ali
        await services.sync.write_record(OUTLET, f"o{n}", {"name": f"o{n}"}, None, user_id="hq")
        visit = {"outletId": f"o{n}", "repId": "ali", "status": "PLANNED"}
        await services.sync.write_record(VISIT, f"planned{n}", visit, None, user_id="hq")
    await services.sync.write_record(OUTLET, "mine", {"name": "mine", "repIds": ["ali"]}, None, user_id="hq")

    async def push(outlet_ids: list[str]) -> list[dict]:
        finds.filters.clear()
        queue = [change(OUTLET, outlet_id, {"phone": "1"}) for outlet_id in outlet_ids]
        result = await services.sync.push(queue, device_id="d1", rep_id="ali")
        assert {o.status for o in result.outcomes} == {ChangeStatus.MERGED}
        return scope_queries(finds)

    assert len(await push(["o0"])) == 1
    assert len(await push([f"o{n}" for n in range(1, 30)])) == 1
    assert await push(["mine"]) == []  # assigned in repIds: nothing to ask
