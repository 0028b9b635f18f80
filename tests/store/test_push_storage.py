"""Pushes against the real store: receipts, records and history commit together."""

import asyncio

from pymongo import monitoring

from service.app import build_services
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.services import Services
from service.settings import Settings
from service.store import history, receipts, records
from tests.factories import change, order_fields
from tests.store.watched import watched_store, written

VISIT, OUTLET, PRODUCT, ORDER = RecordType.VISIT, RecordType.OUTLET, RecordType.PRODUCT, RecordType.ORDER


async def seed(services: Services) -> None:
    await services.sync.write_record(
        OUTLET,
        "o1",
        {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6, "repIds": [f"rep{n}" for n in range(8)]},
        None,
        user_id="hq",
    )
    await services.sync.write_record(PRODUCT, "p1", {"sku": "M1", "name": "Milo", "unitPrice": 3.5}, None, user_id="hq")


async def test_a_push_stores_records_receipts_and_one_event_per_change(services: Services):
    await seed(services)
    queue = [
        change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"}),
        change(ORDER, "or1", order_fields("o1", ("p1", 2), visitId="v1")),
        change(OUTLET, "o1", {"phone": "03-555"}),
    ]
    result = await services.sync.push(queue, device_id="dev1", rep_id="rep1", queue_depth=0)
    assert [o.status for o in result.outcomes] == [ChangeStatus.APPLIED, ChangeStatus.APPLIED, ChangeStatus.MERGED]
    db = services.store.db
    assert await db[receipts.COLLECTION].count_documents({"deviceId": "dev1"}) == 3
    stored = await records.load(services.store, [(VISIT, "v1"), (ORDER, "or1"), (OUTLET, "o1")])
    assert stored[(OUTLET, "o1")].fields["phone"] == "03-555"
    assert stored[(ORDER, "or1")].owner == "rep1"
    actions = [d["action"] for d in await db[history.COLLECTION].find({"syncId": result.sync_id}).sort("_id").to_list()]
    assert actions == ["APPLIED", "APPLIED", "MERGED", "PUSH"]
    seqs = sorted(r.seq for r in stored.values())
    assert len(set(seqs)) == 3


async def test_retrying_a_push_is_idempotent(services: Services):
    await seed(services)
    queue = [change(VISIT, f"v{i}", {"outletId": "o1", "status": "PLANNED"}) for i in range(5)]
    first = await services.sync.push(queue, device_id="dev1", rep_id="rep1")
    again = await services.sync.push(queue, device_id="dev1", rep_id="rep1")
    assert {o.status for o in first.outcomes} == {ChangeStatus.APPLIED}
    assert {o.status for o in again.outcomes} == {ChangeStatus.DUPLICATE}
    assert await services.store.db[records.COLLECTION].count_documents({"type": "VISIT"}) == 5
    stored = await services.store.db[receipts.COLLECTION].find({}).to_list()
    assert {r["attempts"] for r in stored} == {2}


async def test_concurrent_pushes_to_one_outlet_from_many_devices_all_merge(services: Services):
    await seed(services)

    async def device(n: int) -> None:
        result = await services.sync.push(
            [change(OUTLET, "o1", {"tags": [f"tag{n}"]})], device_id=f"dev{n}", rep_id=f"rep{n}"
        )
        assert result.outcomes[0].status is ChangeStatus.MERGED

    await asyncio.gather(*(device(n) for n in range(8)))
    outlet = (await records.load(services.store, [(OUTLET, "o1")]))[(OUTLET, "o1")]
    assert outlet.fields["tags"] == sorted(f"tag{n}" for n in range(8))
    assert outlet.version == 9


async def test_a_large_push_is_committed_in_chunks_and_decided_in_order(services: Services):
    await seed(services)
    queue = [change(VISIT, f"v{i}", {"outletId": "o1", "status": "PLANNED"}) for i in range(230)]
    result = await services.sync.push(queue, device_id="dev1", rep_id="rep1")
    assert [o.offline_id for o in result.outcomes] == [c.offline_id for c in queue]
    assert await services.store.db[records.COLLECTION].count_documents({"type": "VISIT"}) == 230


class ReceiptWrites(monitoring.CommandListener):
    """The write commands sent to the receipts collection, by name."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get(event.command_name) == receipts.COLLECTION:  # a read
            self.commands.append(event.command_name)
        self.commands += [kind for kind, collection in written(event) if collection == receipts.COLLECTION]

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_new_receipts_are_inserted_and_stored_ones_replaced(settings: Settings, embedded: bool):
    """An insert costs the embedded store a fraction of an upsert (mongoeco 4.11.0: 0.9 against 2.5 ms a receipt)."""
    writes = ReceiptWrites()
    async with watched_store(settings, embedded, writes) as watched:
        services = build_services(settings, watched)
        await seed(services)
        queue = [change(VISIT, f"v{i}", {"outletId": "o1", "status": "PLANNED"}) for i in range(3)]
        writes.commands.clear()
        await services.sync.push(queue[:2], device_id="dev1", rep_id="rep1")
        assert writes.commands == ["find", "insert"]
        writes.commands.clear()
        again = await services.sync.push(queue, device_id="dev1", rep_id="rep1")
        assert [o.status for o in again.outcomes] == [ChangeStatus.DUPLICATE] * 2 + [ChangeStatus.APPLIED]
        assert sorted(writes.commands) == ["find", "insert", "update"]
        stored = await watched.db[receipts.COLLECTION].find({}, sort=[("offlineId", 1)]).to_list()
        assert [r["attempts"] for r in stored] == [2, 2, 1]
