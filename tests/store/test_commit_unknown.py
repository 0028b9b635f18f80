"""Failover: a commit whose answer is lost is resolved by reading what committed, never by deciding again.

The commit below is a wrapper around the real one that loses the answer:
after the commit went through (or, for contrast, instead of it), it raises the
error a dropped connection raises. Every use case must be decided and
recorded exactly once.
"""

from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import AutoReconnect

from service.domain.conflicts import Resolution
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.domain.sync_service import SyncService, SyncSettings
from service.store import history, records, refusals
from service.store.database import Store
from service.store.sync_repository import MongoSyncRepository
from service.store.transactions import COLLECTION as COMMITS
from service.store.transactions import UnitOfWork
from tests.factories import change, work_order_fields

VISIT, OUTLET, WORK_ORDER = RecordType.VISIT, RecordType.OUTLET, RecordType.WORK_ORDER


class LosingAnswers:
    """Commits, and loses the answer of the next ``lost`` commits (``committed=False``: aborts instead)."""

    def __init__(self) -> None:
        self.lost = 0
        self.committed = True
        self.commits = 0

    async def __call__(self, session: AsyncClientSession) -> None:
        if self.lost == 0:
            await session.commit_transaction()
            return
        self.lost -= 1
        if self.committed:
            await session.commit_transaction()
            self.commits += 1
        else:
            await session.abort_transaction()
        raise AutoReconnect("connection closed while reading the commit's answer")


@pytest.fixture
def faults() -> LosingAnswers:
    return LosingAnswers()


@pytest.fixture
async def sync(store: Store, faults: LosingAnswers) -> AsyncIterator[SyncService]:
    yield SyncService(MongoSyncRepository(store, UnitOfWork(store, commit=faults)), SyncSettings())


async def events(store: Store, **query: object) -> list[str]:
    found = await store.db[history.COLLECTION].find(query).sort("_id").to_list()
    return [document["action"] for document in found]


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "not-committed"])
async def test_a_push_is_decided_and_recorded_once(sync: SyncService, store: Store, faults: LosingAnswers, committed):
    await sync.write_record(OUTLET, "o1", {"name": "Kedai Ali", "repIds": ["rep1"]}, None, user_id="hq")
    faults.lost, faults.committed = 1, committed
    queue = [change(VISIT, f"v{i}", {"outletId": "o1", "status": "PLANNED"}) for i in range(3)]
    result = await sync.push(queue, device_id="d1", rep_id="rep1")
    assert [o.status for o in result.outcomes] == [ChangeStatus.APPLIED] * 3
    assert await events(store, syncId=result.sync_id) == ["APPLIED"] * 3 + ["PUSH"]
    assert faults.lost == 0


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "not-committed"])
async def test_each_chunk_of_a_push_is_decided_once_its_commit_marked_by_its_own_history_events(
    store: Store, faults: LosingAnswers, committed
):
    sync = SyncService(MongoSyncRepository(store, UnitOfWork(store, commit=faults)), SyncSettings(chunk_size=2))
    await sync.write_record(OUTLET, "o1", {"name": "Kedai Ali", "repIds": ["rep1"]}, None, user_id="hq")
    markers = await store.db[COMMITS].count_documents({})  # the web write's
    faults.lost, faults.committed = 3, committed  # every chunk's answer
    queue = [change(VISIT, f"v{i}", {"outletId": "o1", "status": "PLANNED"}) for i in range(5)]
    result = await sync.push(queue, device_id="d1", rep_id="rep1")
    assert [o.status for o in result.outcomes] == [ChangeStatus.APPLIED] * 5
    assert await events(store, syncId=result.sync_id) == ["APPLIED"] * 5 + ["PUSH"]
    session = await store.db[history.COLLECTION].find_one({"syncId": result.sync_id, "action": "PUSH"})
    assert session is not None and session["detail"]["counts"] == {"APPLIED": 5}
    assert await store.db[COMMITS].count_documents({}) == markers  # the push wrote no marker of its own


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "not-committed"])
async def test_a_status_report_is_recorded_once_marked_by_its_own_event(
    sync: SyncService, store: Store, faults: LosingAnswers, committed
):
    markers = await store.db[COMMITS].count_documents({})
    faults.lost, faults.committed = 1, committed
    await sync.report_status(device_id="d1", rep_id="rep1", queue_depth=4, app_version="2.1")
    assert await events(store, deviceId="d1") == ["STATUS_REPORTED"]
    assert await store.db[COMMITS].count_documents({}) == markers


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "not-committed"])
async def test_a_web_write_is_applied_once(sync: SyncService, store: Store, faults: LosingAnswers, committed):
    await sync.write_record(OUTLET, "o1", {"name": "Kedai Ali", "repIds": ["rep1"]}, None, user_id="hq")
    await sync.push([change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], device_id="d1", rep_id="rep1")
    faults.lost, faults.committed = 1, committed
    written = await sync.write_record(
        VISIT, "v1", {"outletId": "o1", "status": "PLANNED", "notes": "bring samples"}, 1, user_id="hq"
    )
    assert written.status is ChangeStatus.APPLIED and written.record is not None and written.record.version == 2
    assert await events(store, recordId="v1", action="RECORD_WRITTEN") == ["RECORD_WRITTEN"]


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "not-committed"])
async def test_resolving_a_conflict_is_recorded_once(sync: SyncService, store: Store, faults: LosingAnswers, committed):
    await sync.write_record(OUTLET, "o1", {"name": "Kedai Ali"}, None, user_id="hq")
    await sync.write_record(WORK_ORDER, "w1", {**work_order_fields(), "repId": "rep1"}, None, user_id="hq")
    await sync.write_record(WORK_ORDER, "w1", {**work_order_fields(description="x"), "repId": "rep1"}, 1, user_id="hq")
    mine = change(WORK_ORDER, "w1", work_order_fields(status="IN_PROGRESS"), base_version=1)
    pushed = await sync.push([mine], device_id="d1", rep_id="rep1")
    conflict = pushed.outcomes[0].conflict
    assert conflict is not None
    faults.lost, faults.committed = 1, committed
    resolved = await sync.resolve_conflict(
        conflict.id, Resolution.OVERWRITE, resolver="user:rep1", may_resolve=lambda c: True
    )
    assert resolved.conflict.status.value == "OVERWRITTEN" and resolved.record is not None
    assert resolved.record.version == 3
    assert await events(store, recordId="w1", action="CONFLICT_OVERWRITTEN") == ["CONFLICT_OVERWRITTEN"]
    stored = await records.load(store, [(WORK_ORDER, "w1")])
    assert stored[(WORK_ORDER, "w1")].version == 3


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "not-committed"])
async def test_a_push_refusal_is_recorded_once(sync: SyncService, store: Store, faults: LosingAnswers, committed):
    faults.lost, faults.committed = 1, committed
    refusal = await sync.refuse_push(code="MALFORMED_PUSH", reason="r", device_id="d1", rep_id="rep1", detail={})
    assert await store.db[refusals.COLLECTION].count_documents({"kind": "PUSH"}) == 1
    assert (await store.db[refusals.COLLECTION].find_one({}))["_id"] == refusal.id  # type: ignore[index]
    assert await events(store, action="PUSH_REFUSED") == ["PUSH_REFUSED"]


@pytest.mark.parametrize("committed", [True, False], ids=["answer-lost", "not-committed"])
async def test_what_a_unit_of_work_keeps_after_its_commit_is_kept_once_and_only_when_it_committed(
    store: Store, faults: LosingAnswers, committed
):
    unit_of_work, kept = UnitOfWork(store, commit=faults), []

    async def work(session: AsyncClientSession) -> None:
        await store.db["probes"].update_one({"_id": "p"}, {"$inc": {"runs": 1}}, upsert=True, session=session)
        unit_of_work.after_commit(session, lambda: kept.append("committed"))

    async def failing(session: AsyncClientSession) -> None:
        unit_of_work.after_commit(session, lambda: kept.append("failed"))
        raise ValueError("the work failed")

    faults.lost, faults.committed = 1, committed
    await unit_of_work.run(work)
    with pytest.raises(ValueError):
        await unit_of_work.run(failing)
    assert kept == ["committed"]
    assert (await store.db["probes"].find_one({"_id": "p"}) or {}).get("runs") == 1
