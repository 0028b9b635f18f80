"""Pull: initial sync scoped to the rep, deltas by cursor, no committed change skipped."""

import asyncio
from typing import Any

from service.app import build_services
from service.domain.changes import Operation
from service.domain.record_types import RecordType
from service.domain.records import Record
from service.services import Services
from service.settings import Settings
from service.store import scope_exits
from tests.factories import change
from tests.store.watched import Commands, watched_store

VISIT, OUTLET, PRODUCT = RecordType.VISIT, RecordType.OUTLET, RecordType.PRODUCT


async def pull_all(services: Services, rep: str, cursor: str | None, limit: int = 7):
    seen = []
    while True:
        page, cursor = await services.sync.pull(rep, cursor, limit)
        seen += page.records
        if not page.has_more:
            return seen, cursor


async def test_initial_sync_is_the_reps_records_their_outlets_and_active_products(services: Services):
    write = services.sync.write_record
    await write(OUTLET, "o1", {"name": "o1"}, None, user_id="hq")  # in rep1's scope: its visit is there
    await write(OUTLET, "o2", {"name": "o2", "repIds": ["rep2"]}, None, user_id="hq")
    await write(OUTLET, "o3", {"name": "o3", "repIds": ["rep2", "rep1"]}, None, user_id="hq")
    await write(OUTLET, "o5", {"name": "o5"}, None, user_id="hq")  # nobody's
    await write(PRODUCT, "p1", {"sku": "A", "name": "A", "unitPrice": 1}, None, user_id="hq")
    await write(PRODUCT, "p2", {"sku": "B", "name": "B", "unitPrice": 1, "active": False}, None, user_id="hq")
    await write(VISIT, "v1", {"outletId": "o1", "repId": "rep1", "status": "PLANNED"}, None, user_id="hq")
    await services.sync.push(
        [change(VISIT, "v2", {"outletId": "o2", "status": "PLANNED"}), change(OUTLET, "o6", {"name": "o6"})],
        device_id="d2",
        rep_id="rep2",
    )
    await services.sync.push(
        [
            change(OUTLET, "o4", {"name": "o4"}),  # created by rep1's device
            change(VISIT, "v3", {"outletId": "o1", "status": "PLANNED"}),
            change(VISIT, "v3", operation=Operation.DELETE, base_version=1),
        ],
        device_id="d1",
        rep_id="rep1",
    )
    records, _ = await pull_all(services, "rep1", None, limit=2)
    assert sorted((r.type.value, r.id) for r in records) == [
        ("OUTLET", "o1"),
        ("OUTLET", "o3"),
        ("OUTLET", "o4"),
        ("PRODUCT", "p1"),
        ("VISIT", "v1"),
    ]


async def test_deltas_carry_changes_and_tombstones_since_the_cursor(services: Services):
    await services.sync.write_record(OUTLET, "o1", {"name": "o1", "repIds": ["rep1"]}, None, user_id="hq")
    await services.sync.push(
        [change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], device_id="d1", rep_id="rep1"
    )
    _, cursor = await pull_all(services, "rep1", None)
    await services.sync.push(
        [change(VISIT, "v1", operation=Operation.DELETE, base_version=1)], device_id="d1", rep_id="rep1"
    )
    await services.sync.write_record(OUTLET, "o1", {"phone": "1"}, None, user_id="hq")
    records, cursor = await pull_all(services, "rep1", cursor)
    assert [(r.id, r.deleted) for r in records] == [("v1", True), ("o1", False)]
    records, _ = await pull_all(services, "rep1", cursor)
    assert records == []


async def test_a_poll_with_nothing_new_reads_only_the_head_and_a_page_reads_each_part_once(
    services: Services, settings: Settings, embedded: bool
):
    write = services.sync.write_record
    await write(OUTLET, "o1", {"name": "o1", "repIds": ["rep1"]}, None, user_id="hq")
    await write(VISIT, "v1", {"outletId": "o1", "repId": "rep1", "status": "PLANNED"}, None, user_id="hq")
    commands = Commands()
    async with watched_store(settings, embedded, commands) as watched:
        polling = build_services(settings, watched)
        _, cursor = await pull_all(polling, "rep1", None)
        commands.names.clear()
        page, cursor = await polling.sync.pull("rep1", cursor, 7)
        assert (page.records, commands.names) == ([], ["find"])  # the sequence's head, which has not moved
        await write(VISIT, "v2", {"outletId": "o1", "repId": "rep1", "status": "PLANNED"}, None, user_id="hq")
        commands.names.clear()
        page, _ = await polling.sync.pull("rep1", cursor, 7)
        assert [record.key for record in page.records] == [(VISIT, "v2"), (OUTLET, "o1")]  # the outlet it points at
        # The head, the outlet scope's two probes (the head moved), owned records, products, assigned
        # outlets, referenced outlets, scope exits, and the outlets the delta's records point at.
        assert commands.names == ["find"] * 9


async def test_the_first_page_of_an_initial_sync_reads_the_sequences_head_once(
    services: Services, settings: Settings, embedded: bool
):
    await services.sync.write_record(OUTLET, "o1", {"name": "o1", "repIds": ["rep1"]}, None, user_id="hq")
    heads = Commands()
    async with watched_store(settings, embedded, heads) as watched:
        page, _ = await build_services(settings, watched).sync.pull("rep1", None, 7)
    assert [record.key for record in page.records] == [(OUTLET, "o1")]
    assert heads.collections.count("counters") == 1  # its watermark, and the page's ceiling


async def test_a_cursor_never_skips_a_committed_change_while_others_push(services: Services):
    await services.sync.write_record(OUTLET, "o1", {"name": "o1", "repIds": ["rep1"]}, None, user_id="hq")
    latest: dict[str, int] = {}
    done = asyncio.Event()

    async def device(n: int) -> None:
        for batch in range(4):
            queue = [
                change(
                    VISIT,
                    f"v{n}-{i}",
                    {"outletId": "o1", "status": "PLANNED", "notes": f"b{batch}"},
                    base_version=None if batch == 0 else batch,
                )
                for i in range(5)
            ]
            result = await services.sync.push(queue, device_id=f"d{n}", rep_id="rep1")
            for outcome in result.outcomes:
                assert outcome.record is not None, outcome
                latest[outcome.record.id] = outcome.record.version

    async def puller() -> dict[str, int]:
        seen: dict[str, int] = {}
        cursor = None
        while True:
            finished = done.is_set()
            records, cursor = await pull_all(services, "rep1", cursor, limit=3)
            for record in records:
                if record.type is VISIT:
                    assert record.version >= seen.get(record.id, 0)
                    seen[record.id] = record.version
            if finished:
                return seen
            await asyncio.sleep(0)

    pulling = asyncio.create_task(puller())
    await asyncio.gather(*(device(n) for n in range(4)))
    done.set()
    seen = await pulling
    assert seen == latest
    assert len(seen) == 20 and set(seen.values()) == {4}


async def test_a_change_committed_while_a_page_is_read_comes_in_a_later_page(services: Services, monkeypatch):
    """A page reads its parts one after another (the rep's records, its outlets, its scope exits). Here a
    manager edits the rep's outlet and then reassigns its visit away between the outlet read and the exits
    read: the exit is newer than the edit, and a cursor taken from it would step over the edit for good."""
    write = services.sync.write_record
    await write(OUTLET, "o1", {"name": "o1", "repIds": ["rep1"]}, None, user_id="hq")
    await write(VISIT, "v1", {"outletId": "o1", "repId": "rep1", "status": "PLANNED"}, None, user_id="hq")
    _, cursor = await pull_all(services, "rep1", None)
    exits_after = scope_exits.after
    meanwhile = []

    async def after_a_manager_commits(store: Any, rep_id: str, after_seq: int, limit: int, *rest: Any) -> list[Any]:
        if not meanwhile and limit > 1:  # the page's own read of exits (the outlet scope's check asks for one)
            meanwhile.append(await write(OUTLET, "o1", {"phone": "03-1"}, None, user_id="hq"))
            visit = {"outletId": "o1", "repId": "rep2", "status": "PLANNED"}
            meanwhile.append(await write(VISIT, "v1", visit, 1, user_id="hq"))
        return await exits_after(store, rep_id, after_seq, limit, *rest)

    monkeypatch.setattr(scope_exits, "after", after_a_manager_commits)
    # Something new for the page to read: a poll with nothing after its cursor reads no parts at all.
    await write(VISIT, "v2", {"outletId": "o1", "repId": "rep1", "status": "PLANNED"}, None, user_id="hq")
    first, cursor = await pull_all(services, "rep1", cursor)
    second, _ = await pull_all(services, "rep1", cursor)
    pulled = [(entry.id if isinstance(entry, Record) else entry.key[1], entry.version) for entry in first + second]
    assert ("o1", meanwhile[0].record.version) in pulled
    assert ("v1", meanwhile[1].record.version) in pulled  # as the exit that removes it from the phone


async def test_a_visit_reassigned_away_takes_the_outlet_only_it_held_out_of_the_old_reps_scope(services: Services):
    write = services.sync.write_record
    await write(OUTLET, "o1", {"name": "only through the visit"}, None, user_id="hq")
    await write(OUTLET, "o2", {"name": "assigned", "repIds": ["rep1"]}, None, user_id="hq")
    await write(OUTLET, "o3", {"name": "also through another visit"}, None, user_id="hq")
    for visit, outlet in (("v1", "o1"), ("v2", "o2"), ("v3", "o3"), ("v4", "o3")):
        await write(VISIT, visit, {"outletId": outlet, "repId": "rep1", "status": "PLANNED"}, None, user_id="hq")
    held, cursor = await pull_all(services, "rep1", None)
    assert {r.id for r in held} == {"o1", "o2", "o3", "v1", "v2", "v3", "v4"}
    for visit, outlet in (("v1", "o1"), ("v2", "o2"), ("v3", "o3")):
        await write(VISIT, visit, {"outletId": outlet, "repId": "rep2", "status": "PLANNED"}, 1, user_id="hq")
    delta, _ = await pull_all(services, "rep1", cursor)
    gone = {entry.key[1] for entry in delta if not isinstance(entry, Record)}
    assert gone == {"v1", "v2", "v3", "o1"}  # o2 is assigned to rep1, o3 still has v4 pointing at it
