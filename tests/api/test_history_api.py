"""Integrators read the sync history: pages, the daily report, and the NDJSON export."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import tracemalloc
from collections.abc import AsyncIterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.responses import StreamingResponse

from service.api import export
from service.api.history import SyncAction
from service.domain.history import PUSH, SyncEvent
from service.domain.record_types import RecordType
from service.domain.report import ACTIONS
from service.settings import Settings
from service.store import history, identity, sequence
from service.store.database import Store
from service.store.identity import Device
from service.store.transactions import UnitOfWork
from service.store.write_batch import WriteBatch
from tests.api.conftest import Api
from tests.factories import pushed_visit

HISTORY = """query($f: SyncHistoryFilter, $first: Int!, $after: String){
  syncHistory(filter: $f, first: $first, after: $after){
    edges{ cursor node{ id at action repId deviceId recordType recordId utcOffsetMinutes } }
    pageInfo{ hasNextPage endCursor } } }"""

REPORT = """query($d: Date!, $tz: String){ syncReport(date: $d, timezone: $tz){
  date timezone since until hours total actions{ action label count }
  reps{ repId total actions{ action label count } devicesSynced devicesSilent silentDeviceIds }
  devicesSynced devicesSilent silentDeviceIds } }"""

EXPORT = "/export/history.ndjson"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The stories below happen on fixed 2026 dates: keep them from expiring under the default 90 days.
    return dataclasses.replace(settings, retention_days=3650)


async def record(store: Store, events: list[SyncEvent]) -> list[SyncEvent]:
    """Events as a commit writes them: numbered and inserted in one transaction."""

    async def work(tx):  # type: ignore[no-untyped-def]
        writes = WriteBatch(store)
        stored = history.append(writes, events, await sequence.take(store, tx, len(events)))
        await writes.send(tx)
        return stored

    return await UnitOfWork(store).run(work)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def event(action: str, at: datetime, rep: str | None = "ali", device: str | None = "ali-phone", **more: Any):
    return SyncEvent(action=action, at=at, rep_id=rep, device_id=device, **more)


async def history_ids(api: Api, filter: dict[str, Any] | None = None, token: str | None = None) -> list[int]:
    kwargs = {"token": token} if token else {}
    data = await api.data(HISTORY, {"f": filter, "first": 100}, **kwargs)
    return [int(edge["node"]["id"]) for edge in data["syncHistory"]["edges"]]


# --- syncHistory --------------------------------------------------------------------------------------------


async def test_sync_history_is_in_sequence_order_and_filters_by_rep_device_record_action_and_time(
    api: Api, store: Store
):
    t = utc(2026, 11, 20, 1)
    stored = await record(
        store,
        [
            event("APPLIED", t, record_type=RecordType.VISIT, record_id="v1", utc_offset_minutes=480),
            event("CONFLICT", t + timedelta(minutes=1), record_type=RecordType.OUTLET, record_id="o1"),
            event(PUSH, t + timedelta(minutes=2)),
            event(
                "APPLIED",
                t + timedelta(minutes=3),
                rep="siti",
                device="siti-phone",
                record_type=RecordType.VISIT,
                record_id="v2",
            ),
            event(
                "REFUSED", t + timedelta(minutes=4), device="ali-tablet", record_type=RecordType.VISIT, record_id="v1"
            ),
            event("APPLIED", t - timedelta(hours=1), record_type=RecordType.VISIT, record_id="v1"),  # captured late
        ],
    )
    ids = [e.id for e in stored]
    assert await history_ids(api) == ids  # by sequence, not by time
    assert await history_ids(api, {"repId": "siti"}) == [ids[3]]
    assert await history_ids(api, {"deviceId": "ali-tablet"}) == [ids[4]]
    assert await history_ids(api, {"recordType": "VISIT", "recordId": "v1"}) == [ids[0], ids[4], ids[5]]
    assert await history_ids(api, {"actions": ["CONFLICT", "REFUSED"]}) == [ids[1], ids[4]]
    window = {"since": "2026-11-20T09:01:00+08:00", "until": "2026-11-20T01:04:00Z"}  # [01:01Z, 01:04Z)
    assert await history_ids(api, window) == ids[1:4]
    first = (await api.data(HISTORY, {"first": 1}))["syncHistory"]["edges"][0]["node"]
    assert first["at"] == "2026-11-20T01:00:00.000Z" and first["utcOffsetMinutes"] == 480


async def test_a_rep_reads_only_its_own_history(api: Api, store: Store):
    rep_id, rep_token = await api.user("Ali", "REP")
    mine = await record(store, [event("APPLIED", utc(2026, 11, 20, 1), rep=rep_id)])
    await record(store, [event("APPLIED", utc(2026, 11, 20, 2), rep="siti")])
    assert await history_ids(api, token=rep_token) == [mine[0].id]
    body = await api.call(HISTORY, {"f": {"repId": "siti"}, "first": 10}, rep_token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_paging_by_7_while_pushes_arrive_sees_every_event_once_and_in_order(api: Api, store: Store):
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6})
    _, rep_token = await api.user("Ali", "REP")
    device = await api.device(rep_token, "dev1")
    pushes, progress = 0, asyncio.Event()
    writing = True

    async def writer() -> None:
        nonlocal pushes, writing
        for n in range(8):
            await api.push(device, "dev1", [pushed_visit(f"c{n}-{i}", f"v{n}-{i}") for i in range(3)])
            pushes += 1
            progress.set()
        writing = False
        progress.set()

    seen: list[int] = []
    pages_while_writing = 0

    async def reader() -> None:
        nonlocal pages_while_writing
        after = None
        while True:
            was_writing, pushes_before = writing, pushes
            page = (await api.data(HISTORY, {"first": 7, "after": after}))["syncHistory"]
            seen.extend(int(edge["node"]["id"]) for edge in page["edges"])
            after = page["pageInfo"]["endCursor"] or after
            pages_while_writing += was_writing
            if page["pageInfo"]["hasNextPage"]:
                continue
            if not was_writing:
                return  # this page was read after the last push committed: nothing is left
            if pushes == pushes_before:  # caught up: wait for the next push, no polling
                progress.clear()
                await progress.wait()

    await asyncio.gather(writer(), reader())
    committed = [int(d["_id"]) for d in await store.db[history.COLLECTION].find({}, {"_id": 1}).sort("_id").to_list()]
    assert len(committed) == 1 + 8 * 4  # the web write, then 3 outcomes and a PUSH per push
    assert seen == committed  # each once, in increasing order: no duplicate, no gap
    assert pages_while_writing >= 2


async def test_a_cursor_from_elsewhere_is_refused(api: Api):
    body = await api.call(HISTORY, {"first": 5, "after": "not-a-cursor"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# --- syncReport ---------------------------------------------------------------------------------------------


async def report(api: Api, day: str, timezone: str | None = None, token: str | None = None) -> dict[str, Any]:
    kwargs = {"token": token} if token else {}
    variables = {"d": day, **({"tz": timezone} if timezone else {})}
    return (await api.data(REPORT, variables, **kwargs))["syncReport"]


async def test_the_daily_report_follows_the_local_day_across_dst(api: Api, store: Store):
    await record(
        store,
        [
            event("APPLIED", utc(2026, 3, 8, 4, 59)),  # New York, March 7th
            event("APPLIED", utc(2026, 3, 8, 5)),  # New York, 00:00 March 8th (23 hours)
            event("UNCHANGED", utc(2026, 3, 9, 3, 59)),  # New York, 23:59 March 8th
            event("APPLIED", utc(2026, 3, 9, 4)),  # New York, March 9th
            event("DUPLICATE", utc(2026, 11, 1, 4)),  # New York, 00:00 November 1st (25 hours)
            event("DUPLICATE", utc(2026, 11, 2, 4, 30)),  # New York, 23:30 November 1st: the 25th hour
            event("CONFLICT", utc(2026, 11, 2, 5)),  # New York, November 2nd
            event("BLOCKED", utc(2026, 3, 28, 23)),  # Berlin, 00:00 March 29th (23 hours)
            event("BLOCKED", utc(2026, 3, 29, 21, 59)),  # Berlin, 23:59 March 29th
            event("BLOCKED", utc(2026, 3, 29, 22)),  # Berlin, March 30th
        ],
    )
    spring = await report(api, "2026-03-08", "America/New_York")
    assert (spring["date"], spring["timezone"], spring["hours"]) == ("2026-03-08", "America/New_York", 23)
    assert (spring["since"], spring["until"]) == ("2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z")
    counts = {a["action"]: (a["label"], a["count"]) for a in spring["actions"]}
    assert counts["APPLIED"] == ("Updated", 1) and counts["UNCHANGED"] == ("No difference", 1)
    assert spring["total"] == 2
    autumn = await report(api, "2026-11-01", "America/New_York")
    assert (autumn["hours"], autumn["total"]) == (25, 2)
    assert {a["action"]: a["count"] for a in autumn["actions"] if a["count"]} == {"DUPLICATE": 2}
    assert [(a["label"], a["count"]) for a in autumn["reps"][0]["actions"]] == [("No new changes", 2)]
    berlin = await report(api, "2026-03-29", "Europe/Berlin")
    assert (berlin["hours"], berlin["total"], berlin["since"]) == (23, 2, "2026-03-28T23:00:00.000Z")
    in_utc = await report(api, "2026-03-08")  # timezone defaults to UTC
    assert (in_utc["hours"], in_utc["total"], in_utc["timezone"]) == (24, 2, "UTC")


async def test_the_report_counts_devices_synced_and_silent_and_a_rep_sees_only_its_own(api: Api, store: Store):
    ali, ali_token = await api.user("Ali", "REP")
    siti, _ = await api.user("Siti", "REP")
    _, integrator = await api.user("Warehouse", "INTEGRATOR")
    _, manager = await api.user("Mei", "MANAGER")
    earlier = utc(2026, 10, 1)
    for device_id, rep in (("ali-phone", ali), ("ali-tablet", ali), ("siti-phone", siti), ("siti-old", siti)):
        await identity.insert_device(store, Device(device_id, rep, "Phone", "android", "1.0", earlier))
    await identity.revoke_device(store, "siti-old", earlier)
    day = utc(2026, 11, 20, 1)  # 09:00 in Kuala Lumpur
    await record(
        store,
        [
            event("APPLIED", day, rep=ali),
            event(PUSH, day, rep=ali),
            event("REFUSED", day, rep=siti, device="siti-phone"),
            event("PUSH_REFUSED", day, rep=siti, device="siti-phone"),  # turned away: not a sync
        ],
    )
    for token in (None, integrator, manager):
        whole = await report(api, "2026-11-20", "Asia/Kuala_Lumpur", token)
        assert (whole["total"], whole["devicesSynced"], whole["devicesSilent"]) == (4, 1, 2)
        assert whole["silentDeviceIds"] == ["ali-tablet", "siti-phone"]
    reps = {rep["repId"]: rep for rep in whole["reps"]}
    assert (reps[ali]["devicesSynced"], reps[ali]["silentDeviceIds"]) == (1, ["ali-tablet"])
    assert [(a["action"], a["label"]) for a in reps[siti]["actions"]] == [
        ("REFUSED", "Validation error"),
        ("PUSH_REFUSED", "Unable to update"),
    ]
    own = await report(api, "2026-11-20", "Asia/Kuala_Lumpur", ali_token)
    assert [rep["repId"] for rep in own["reps"]] == [ali]
    assert (own["total"], own["devicesSynced"], own["devicesSilent"]) == (2, 1, 1)


def test_the_report_knows_every_action_the_api_can_show():
    assert list(SyncAction.__members__) == list(ACTIONS)


async def test_an_unknown_timezone_is_a_clear_error(api: Api):
    body = await api.call(REPORT, {"d": "2026-11-20", "tz": "Mars/Olympus_Mons"})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "unknown timezone 'Mars/Olympus_Mons'" in error["message"]
    body = await api.call(REPORT, {"d": "20/11/2026"})
    assert body["errors"] and not body.get("data")


# --- export -------------------------------------------------------------------------------------------------


def lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines()]


async def test_the_export_needs_an_admin_or_integrator_token(api: Api, store: Store):
    await record(store, [event("APPLIED", utc(2026, 11, 20, 1))])
    _, integrator = await api.user("Warehouse", "INTEGRATOR")
    _, manager = await api.user("Mei", "MANAGER")
    _, rep = await api.user("Ali", "REP")
    missing = await api.http.get(EXPORT)
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    wrong = await api.http.get(EXPORT, headers={"Authorization": "Bearer fs_not-a-real-token-123"})
    assert wrong.status_code == 401 and "fs_not-a-real-token-123" not in wrong.text
    for token in (manager, rep):
        refused = await api.http.get(EXPORT, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403 and token not in refused.text
    for token in ("admin-secret-token", integrator):
        allowed = await api.http.get(EXPORT, headers={"Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
        assert allowed.headers["content-type"] == "application/x-ndjson"
        assert len(lines(allowed.content)) == 1


async def test_the_export_is_ndjson_with_the_graphql_names_filtered_and_resumable(api: Api, store: Store):
    t = utc(2026, 11, 20, 1)
    stored = await record(
        store,
        [
            event(
                "APPLIED",
                t,
                record_type=RecordType.VISIT,
                record_id="v1",
                offline_id="c1",
                utc_offset_minutes=480,
                version_after=1,
                detail={"note": "ok ✓"},
            ),
            event("CONFLICT", t + timedelta(minutes=1), record_type=RecordType.OUTLET, record_id="o1"),
            event("APPLIED", t + timedelta(minutes=2), rep="siti", device="siti-phone"),
            event("REFUSED", t + timedelta(minutes=3)),
        ],
    )
    ids = [e.id for e in stored]
    admin = {"Authorization": "Bearer admin-secret-token"}

    async def exported(**params: Any) -> list[dict[str, Any]]:
        response = await api.http.get(EXPORT, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return lines(response.content)

    everything = await exported()
    assert [line["id"] for line in everything] == ids
    assert everything[0] == {
        "id": ids[0],
        "at": "2026-11-20T01:00:00.000Z",
        "syncId": None,
        "deviceId": "ali-phone",
        "repId": "ali",
        "actorId": None,
        "offlineId": "c1",
        "recordType": "VISIT",
        "recordId": "v1",
        "action": "APPLIED",
        "attempt": None,
        "versionBefore": None,
        "versionAfter": 1,
        "utcOffsetMinutes": 480,
        "detail": {"note": "ok ✓"},
    }
    assert [line["id"] for line in await exported(repId="siti")] == [ids[2]]
    assert [line["id"] for line in await exported(deviceId="ali-phone", action=["CONFLICT", "REFUSED"])] == [
        ids[1],
        ids[3],
    ]
    assert [line["id"] for line in await exported(recordType="OUTLET", recordId="o1")] == [ids[1]]
    window = {"since": "2026-11-20T09:01:00+08:00", "until": "2026-11-20T01:03:00Z"}
    assert [line["id"] for line in await exported(**window)] == ids[1:3]
    assert [line["id"] for line in await exported(after=ids[1])] == ids[2:]  # the hourly job resumes
    assert await exported(after=ids[3]) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=2026-11-20T09:00:00", "since needs a UTC offset"),
        ("until=yesterday", "until is not an ISO 8601 timestamp"),
        ("action=EXPLODED", "unknown action 'EXPLODED'"),
        ("recordType=SPACESHIP", "unknown recordType 'SPACESHIP'"),
        ("after=abc", "after must be an event id"),
        ("actions=APPLIED", "unknown parameter 'actions'"),
    ],
)
async def test_the_export_refuses_bad_parameters_with_a_clear_400(api: Api, query: str, message: str):
    response = await api.http.get(f"{EXPORT}?{query}", headers={"Authorization": "Bearer admin-secret-token"})
    assert response.status_code == 400
    assert message in response.json()["error"]


async def test_an_offset_whose_plus_became_a_space_still_parses(api: Api, store: Store):
    [stored] = await record(store, [event("APPLIED", utc(2026, 11, 20, 1))])
    url = f"{EXPORT}?since=2026-11-20T09:00:00+08:00"  # an unencoded "+" arrives as a space
    response = await api.http.get(url, headers={"Authorization": "Bearer admin-secret-token"})
    assert response.status_code == 200 and [line["id"] for line in lines(response.content)] == [stored.id]


async def stored_documents(count: int) -> AsyncIterator[dict[str, Any]]:
    """History documents as the store's cursor yields them."""
    t = utc(2026, 11, 20)
    for seq in range(1, count + 1):
        yield history.to_document(
            event(
                "APPLIED",
                t + timedelta(milliseconds=seq),
                sync_id=f"sync-{seq // 50}",
                offline_id=f"c{seq}",
                record_type=RecordType.VISIT,
                record_id=f"v{seq}",
                attempt=1,
                version_after=1,
                utc_offset_minutes=480,
                detail={"duplicateOf": None},
            ),
            seq,
        )


async def peak_memory_streaming(count: int) -> tuple[int, int, int]:
    """Serve an export of ``count`` events in process; the peak traced memory, the lines and bytes sent."""
    sent = {"lines": 0, "bytes": 0}

    async def receive() -> dict[str, Any]:
        raise AssertionError("an ASGI 2.4 streaming response does not read")

    async def send(message: MutableMapping[str, Any]) -> None:
        body = message.get("body", b"")
        sent["lines"] += body.count(b"\n")
        sent["bytes"] += len(body)

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    response = StreamingResponse(export.ndjson(stored_documents(count)), media_type=export.MEDIA_TYPE)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        await response(scope, receive, send)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return peak, sent["lines"], sent["bytes"]


async def test_exporting_20k_events_takes_no_more_memory_than_5k():
    small, small_lines, _ = await peak_memory_streaming(5_000)
    large, large_lines, large_bytes = await peak_memory_streaming(20_000)
    assert (small_lines, large_lines) == (5_000, 20_000)
    assert large_bytes > 4_000_000  # what would be held if the body were built in memory
    assert large < 1_000_000, large
    assert large < small * 1.25 + 64 * 1024, (small, large)  # does not scale with the number of events
