"""Outlet scope over GraphQL: a rep's phone reads and changes only its outlets; managers assign them."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import Api, through_both_paths
from tests.factories import AT, pushed_visit

settings = through_both_paths()

RECORD = "query($r: ID!){record(recordType:OUTLET, recordId:$r){recordId fields}}"
PULL = 'query($s: String){pull(deviceId:"dev1", since:$s){cursor records{recordType recordId outOfScope fields}}}'
REFUSALS = "query{refusals{edges{node{code status attempts}}}}"


def outlet_patch(offline_id: str, outlet_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "offlineId": offline_id,
        "recordType": "OUTLET",
        "recordId": outlet_id,
        "operation": "UPSERT",
        "capturedAt": AT,
        "fields": fields,
    }


async def ali_and_two_outlets(api: Api) -> tuple[str, str, str]:
    """Ali (a rep, id and user token) with phone dev1 (its token); o1 is Ali's, o2 nobody's."""
    ali_id, ali = await api.user("Ali", "REP")
    device = await api.device(ali, "dev1")
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "repIds": [ali_id]})
    await api.write("OUTLET", "o2", {"name": "Kedai Siti", "phone": "03-999"})
    return ali_id, ali, device


async def pulled(api: Api, device: str, since: str | None = None) -> tuple[dict[str, dict], str]:
    data = (await api.data(PULL, {"s": since}, device))["pull"]
    return {r["recordId"]: r for r in data["records"] if r["recordType"] == "OUTLET"}, data["cursor"]


async def test_an_outlet_outside_the_scope_is_neither_read_nor_changed_until_a_manager_assigns_it(api: Api):
    ali_id, ali, device = await ali_and_two_outlets(api)
    for token in (device, ali):
        assert (await api.data(RECORD, {"r": "o2"}, token))["record"] is None
        assert (await api.data(RECORD, {"r": "o1"}, token))["record"]["fields"]["name"] == "Kedai Ali"
    assert (await api.data(RECORD, {"r": "o2"}))["record"]["fields"]["name"] == "Kedai Siti"  # the admin sees it
    outlets, cursor = await pulled(api, device)
    assert set(outlets) == {"o1"}

    queue = [outlet_patch("a", "o2", {"contactName": "Pak Budi"}), pushed_visit("b", "v1", "o1")]
    refused, blocked = await api.push(device, "dev1", queue)
    assert (refused["status"], blocked["status"], blocked["blockedBy"]) == ("REFUSED", "BLOCKED", "a")
    assert (refused["refusal"]["code"], refused["refusal"]["action"]) == ("OUT_OF_SCOPE", "FIX_DATA")
    assert refused["record"] is None
    assert "Kedai Siti" not in str(refused) and "03-999" not in str(refused)
    assert (await api.data(RECORD, {"r": "o2"}))["record"]["fields"]["phone"] == "03-999"

    await api.write("OUTLET", "o2", {"repIds": [ali_id]})  # the manager assigns it: the same queue drains
    merged, applied = await api.push(device, "dev1", queue)
    assert (merged["status"], applied["status"]) == ("MERGED", "APPLIED")
    assert merged["record"]["fields"]["contactName"] == "Pak Budi"
    refusals = [e["node"] for e in (await api.data(REFUSALS, token=device))["refusals"]["edges"]]
    assert refusals == [{"code": "OUT_OF_SCOPE", "status": "RESOLVED", "attempts": 2}]
    outlets, _ = await pulled(api, device, cursor)
    assert outlets["o2"]["fields"]["contactName"] == "Pak Budi"


async def test_an_unassigned_outlet_leaves_the_reps_pulls_and_answers(api: Api):
    ali_id, _, device = await ali_and_two_outlets(api)
    _, cursor = await pulled(api, device)
    change = outlet_patch("p", "o1", {"phone": "03-222"})
    [merged] = await api.push(device, "dev1", [change])
    assert merged["status"] == "MERGED"

    await api.write("OUTLET", "o1", {"repIds": []})
    outlets, cursor = await pulled(api, device, cursor)
    assert outlets["o1"] == {"recordType": "OUTLET", "recordId": "o1", "outOfScope": True, "fields": None}
    [again] = await api.push(device, "dev1", [change])
    assert (again["status"], again["record"]) == ("DUPLICATE", None)
    assert (await api.data(RECORD, {"r": "o1"}, device))["record"] is None
    [refused] = await api.push(device, "dev1", [pushed_visit("v", "v1", "o1")])
    refusal = refused["refusal"]
    assert (refusal["code"], refusal["related"]) == ("OUTLET_NOT_ASSIGNED", {"recordType": "OUTLET", "recordId": "o1"})
    assert "o1" in refusal["reason"] and "Kedai Ali" not in refusal["reason"]

    await api.write("OUTLET", "o1", {"repIds": [ali_id]})  # assigned again: it comes back
    outlets, _ = await pulled(api, device, cursor)
    assert outlets["o1"]["outOfScope"] is False and outlets["o1"]["fields"]["phone"] == "03-222"


async def test_an_outlet_stays_with_a_rep_who_still_has_work_there(api: Api):
    ali_id, _, device = await ali_and_two_outlets(api)
    await api.write("VISIT", "v1", {"outletId": "o1", "repId": ali_id, "status": "PLANNED"})
    _, cursor = await pulled(api, device)
    await api.write("OUTLET", "o1", {"repIds": []})
    outlets, _ = await pulled(api, device, cursor)
    assert outlets["o1"]["outOfScope"] is False  # its visit there keeps o1 in its scope: an update, not a removal
    assert (await api.data(RECORD, {"r": "o1"}, device))["record"]["recordId"] == "o1"


async def test_devices_cannot_assign_outlets(api: Api):
    _, _, device = await ali_and_two_outlets(api)
    [refused, applied] = await api.push(
        device, "dev1", [outlet_patch("r", "o1", {"repIds": ["someone"]}), pushed_visit("v", "v1", "o1")]
    )
    assert (refused["refusal"]["code"], refused["refusal"]["action"]) == ("READ_ONLY_FIELD", "ACKNOWLEDGE")
    assert applied["status"] == "APPLIED"


async def test_with_outlet_access_all_reps_change_every_outlet_but_pull_only_their_scope(settings: Settings):
    app = create_app(dataclasses.replace(settings, outlet_access="all"))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http)
        _, _, device = await ali_and_two_outlets(api)
        merged, applied = await api.push(
            device, "dev1", [outlet_patch("a", "o2", {"contactName": "Pak Budi"}), pushed_visit("b", "v", "o2")]
        )
        assert (merged["status"], applied["status"]) == ("MERGED", "APPLIED")
        assert merged["record"]["fields"]["name"] == "Kedai Siti"
        await api.write("OUTLET", "o3", {"name": "Elsewhere"})
        outlets, _ = await pulled(api, device)
        assert set(outlets) == {"o1", "o2"}  # o2 through Ali's visit there; o3 is not Ali's
