"""A record leaving a rep's scope reaches that rep's pulls as an outOfScope entry, in cursor order."""

import asyncio

from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.domain.records import Record
from service.domain.scope_exits import ScopeExit
from service.services import Services
from tests.factories import change
from tests.store.test_pull_cursors import pull_all

VISIT, OUTLET = RecordType.VISIT, RecordType.OUTLET
PLANNED = {"outletId": "o1", "status": "PLANNED"}


async def reassign(services: Services, visit: str, rep: str, fields: dict = PLANNED) -> Record:
    current = (await services.sync_repository.load_records([(VISIT, visit)]))[(VISIT, visit)]
    result = await services.sync.write_record(
        VISIT, visit, {**fields, "repId": rep}, current.version, user_id="manager"
    )
    assert result.status is ChangeStatus.APPLIED and result.record is not None
    return result.record


async def seeded(services: Services) -> str:
    """rep1 has visit v1; returns rep1's cursor after its initial sync."""
    await services.sync.write_record(OUTLET, "o1", {"name": "Kedai Ali", "repIds": ["rep1"]}, None, user_id="manager")
    await services.sync.push([change(VISIT, "v1", PLANNED)], device_id="d1", rep_id="rep1")
    _, cursor = await pull_all(services, "rep1", None)
    return cursor


async def test_a_reassigned_visit_leaves_the_old_reps_pulls_and_reaches_the_new_reps(services: Services):
    cursor = await seeded(services)
    record = await reassign(services, "v1", "rep2")
    assert (record.owner, record.version) == ("rep2", 2)

    entries, _ = await pull_all(services, "rep1", cursor)
    assert [(type(e), e.key, e.version) for e in entries] == [(ScopeExit, (VISIT, "v1"), 2)]
    assert entries[0].seq > 0
    theirs, _ = await pull_all(services, "rep2", None)
    assert [(e.key, isinstance(e, Record)) for e in theirs if e.key[0] is VISIT] == [((VISIT, "v1"), True)]
    fresh, _ = await pull_all(services, "rep1", None)  # an initial sync has nothing to remove
    assert [e.key for e in fresh if e.key[0] is VISIT] == []


async def test_the_previous_owners_change_is_refused_as_reassigned_and_a_strangers_as_not_owner(services: Services):
    await seeded(services)
    await reassign(services, "v1", "rep2")
    done = {**PLANNED, "status": "COMPLETED", "completedAt": "2026-11-20T03:00:00Z"}
    mine = await services.sync.push([change(VISIT, "v1", done, base_version=1)], device_id="d1", rep_id="rep1")
    refusal = mine.outcomes[0].refusal
    assert refusal is not None and refusal.code == "RECORD_REASSIGNED" and "rep2" in refusal.reason
    assert mine.outcomes[0].record is None
    stranger = await services.sync.push([change(VISIT, "v1", done, base_version=2)], device_id="d3", rep_id="rep3")
    assert stranger.outcomes[0].refusal is not None and stranger.outcomes[0].refusal.code == "NOT_OWNER"
    current = await services.sync_repository.load_records([(VISIT, "v1")])
    assert current[(VISIT, "v1")].owner == "rep2" and current[(VISIT, "v1")].fields["repId"] == "rep2"


async def test_a_record_reassigned_back_is_removed_then_received_again(services: Services):
    cursor = await seeded(services)
    await reassign(services, "v1", "rep2")
    await reassign(services, "v1", "rep1", {**PLANNED, "notes": "back to you"})
    entries, _ = await pull_all(services, "rep1", cursor, limit=1)
    visit = [e for e in entries if e.key == (VISIT, "v1")]
    assert [type(e) for e in visit] == [ScopeExit, Record] and visit[0].seq < visit[1].seq


async def test_exits_interleave_with_records_in_cursor_order_under_concurrent_writers(services: Services):
    await services.sync.write_record(OUTLET, "o1", {"name": "Kedai Ali", "repIds": ["rep1"]}, None, user_id="manager")
    visits = [f"v{n}" for n in range(12)]
    await services.sync.push([change(VISIT, v, PLANNED) for v in visits], device_id="d1", rep_id="rep1")
    done = asyncio.Event()

    async def manager() -> None:
        for n, visit in enumerate(visits):
            await reassign(services, visit, "rep2" if n % 2 else "rep1", {**PLANNED, "notes": "moved"})
        done.set()

    async def device() -> set[str]:
        held: set[str] = set()
        cursor = None
        while True:
            finished = done.is_set()
            entries, cursor = await pull_all(services, "rep1", cursor, limit=2)
            for entry in entries:
                if entry.key[0] is VISIT:
                    (held.discard if isinstance(entry, ScopeExit) else held.add)(entry.key[1])
            if finished:
                return held
            await asyncio.sleep(0)

    held, _ = await asyncio.gather(device(), manager())
    assert held == {v for n, v in enumerate(visits) if n % 2 == 0}
