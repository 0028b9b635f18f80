"""Devices push and pull over GraphQL; sync outcomes are data, not errors."""

import base64

from pycrdt import Doc, Map

from tests.api.conftest import PUSH, Api, through_both_paths
from tests.factories import AT, pushed_visit

settings = through_both_paths()


async def rep_with_device(api: Api, name: str = "Ali", device_id: str = "dev1") -> tuple[str, str]:
    rep_id, rep_token = await api.user(name, "REP")
    return rep_id, await api.device(rep_token, device_id)


async def test_a_rep_device_pushes_pulls_and_retries_safely(api: Api):
    rep_id, device = await rep_with_device(api)
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6, "repIds": [rep_id]})
    results = await api.push(
        device, "dev1", [pushed_visit("c1", "v1"), pushed_visit("c2", "v2", "missing")], queueDepth=0
    )
    assert [r["status"] for r in results] == ["APPLIED", "REFUSED"]
    assert results[1]["refusal"]["code"] == "OUTLET_NOT_FOUND"
    again = await api.push(device, "dev1", [pushed_visit("c1", "v1")])
    assert (again[0]["status"], again[0]["duplicateOf"]) == ("DUPLICATE", "APPLIED")
    data = await api.data(
        'query{pull(deviceId:"dev1"){cursor hasMore records{recordType recordId version}}}', token=device
    )
    assert {(r["recordType"], r["recordId"]) for r in data["pull"]["records"]} == {("VISIT", "v1"), ("OUTLET", "o1")}


async def test_shared_outlets_accept_yjs_updates_and_answer_with_what_the_device_lacks(api: Api):
    rep_id, device = await rep_with_device(api)
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "repIds": [rep_id]})
    doc = Doc(client_id=4242)
    fields = doc.get("fields", type=Map)
    fields["phone"] = "03-1234"
    change = {
        "offlineId": "y1",
        "recordType": "OUTLET",
        "recordId": "o1",
        "operation": "UPSERT",
        "capturedAt": AT,
        "crdtUpdate": base64.b64encode(doc.get_update()).decode(),
        "stateVector": base64.b64encode(doc.get_state()).decode(),
    }
    [result] = await api.push(device, "dev1", [change])
    assert result["status"] == "MERGED"
    assert result["record"]["fields"]["phone"] == "03-1234"
    doc.apply_update(base64.b64decode(result["record"]["crdtState"]))
    assert fields["name"] == "Kedai Ali"


RESOLVE = "mutation($i: ResolveConflictInput!){resolveConflict(input:$i){conflict{status} record{version fields}}}"


async def seed_002_conflict(api: Api) -> tuple[str, dict, dict]:
    """Seed 002: User A's device changes a work order's status offline (on version 1) while
    User B, on the web, changes its description (version 2). A's push meets a conflict."""
    _, device = await rep_with_device(api)
    rep_id = (await api.data("query{me{id}}", token=device))["me"]["id"]
    await api.write("OUTLET", "o1", {"name": "Kedai Ali"})
    work_order = {"outletId": "o1", "repId": rep_id, "status": "OPEN", "description": "Chiller"}
    assert (await api.write("WORK_ORDER", "w1", work_order))["record"]["version"] == 1
    assert (await api.write("WORK_ORDER", "w1", {**work_order, "description": "Door"}, 1))["status"] == "APPLIED"
    mine = {
        "offlineId": "a1",
        "recordType": "WORK_ORDER",
        "recordId": "w1",
        "operation": "UPSERT",
        "capturedAt": AT,
        "baseVersion": 1,
        "fields": {"outletId": "o1", "status": "IN_PROGRESS", "description": "Chiller"},
    }
    [result] = await api.push(device, "dev1", [mine])
    assert result["status"] == "CONFLICT"
    return device, mine, result["conflict"]


async def test_seed_002_overwrite_reverts_the_other_users_edit(api: Api):
    device, mine, conflict = await seed_002_conflict(api)
    changed = (conflict["baseVersion"], conflict["serverVersion"], conflict["changedFields"])
    assert changed == (1, 2, ["description", "status"])
    data = await api.data(RESOLVE, {"i": {"conflictId": conflict["id"], "resolution": "OVERWRITE"}}, device)
    resolved = data["resolveConflict"]
    assert resolved["conflict"]["status"] == "OVERWRITTEN"
    assert (resolved["record"]["version"], resolved["record"]["fields"]["status"]) == (3, "IN_PROGRESS")
    assert resolved["record"]["fields"]["description"] == "Chiller"  # B's edit reverted, as in seed 002
    [retry] = await api.push(device, "dev1", [mine])
    assert (retry["status"], retry["conflict"]["status"]) == ("DUPLICATE", "OVERWRITTEN")


async def test_seed_002_discard_keeps_the_other_users_edit(api: Api):
    device, _, conflict = await seed_002_conflict(api)
    data = await api.data(RESOLVE, {"i": {"conflictId": conflict["id"], "resolution": "DISCARD"}}, device)
    record = data["resolveConflict"]["record"]
    assert data["resolveConflict"]["conflict"]["status"] == "DISCARDED"
    assert (record["version"], record["fields"]["status"], record["fields"]["description"]) == (2, "OPEN", "Door")
    conflicts = await api.data("query{conflicts{id}}", token=device)
    assert conflicts["conflicts"] == []


async def test_a_manager_write_on_a_stale_version_is_a_conflict_not_an_error(api: Api):
    await api.write("PRODUCT", "p1", {"sku": "A", "name": "A", "unitPrice": 1})
    _, rep_token = await api.user("Ali", "REP")
    await api.write("OUTLET", "o1", {"name": "x"})
    rep_id = (await api.data("query{me{id}}", token=rep_token))["me"]["id"]
    await api.write("VISIT", "v1", {"outletId": "o1", "repId": rep_id, "status": "PLANNED"})
    await api.write("VISIT", "v1", {"outletId": "o1", "repId": rep_id, "status": "CANCELLED"}, 1)
    stale = await api.write("VISIT", "v1", {"outletId": "o1", "repId": rep_id, "status": "COMPLETED"}, 1)
    assert (stale["status"], stale["conflict"]["serverVersion"]) == ("CONFLICT", 2)


async def test_bad_requests_are_errors_that_name_the_problem(api: Api):
    _, device = await rep_with_device(api)
    bad_base64 = {
        "offlineId": "b",
        "recordType": "OUTLET",
        "recordId": "o1",
        "operation": "UPSERT",
        "capturedAt": AT,
        "crdtUpdate": "%%%",
    }
    body = await api.call(PUSH, {"i": {"deviceId": "dev1", "changes": [bad_base64]}}, device)
    assert "base64" in body["errors"][0]["message"]
    body = await api.call(
        PUSH, {"i": {"deviceId": "dev1", "changes": [pushed_visit(str(i), str(i)) for i in range(501)]}}, device
    )
    assert "at most 500 changes" in body["errors"][0]["message"]
    body = await api.call('query{pull(deviceId:"dev1", since:"garbage"){cursor}}', token=device)
    assert "cursor" in body["errors"][0]["message"]


async def test_health_readiness_and_metrics_respond(api: Api):
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    assert (await api.http.get("/readyz")).status_code == 200
    assert "fieldsync_pushes_total" in (await api.http.get("/metrics")).text


async def test_a_visit_reassigned_away_comes_to_the_old_reps_pull_as_out_of_scope_without_data(api: Api):
    rep_b, _ = await api.user("Budi", "REP")
    rep_a, device = await rep_with_device(api)
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6, "repIds": [rep_a]})
    await api.push(device, "dev1", [pushed_visit("c1", "v1")])
    query = 'query($s:String){pull(deviceId:"dev1", since:$s){cursor records{recordId version fields outOfScope}}}'
    first = (await api.data(query, {"s": None}, device))["pull"]
    assert {r["outOfScope"] for r in first["records"]} == {False}
    written = await api.write("VISIT", "v1", {"outletId": "o1", "status": "PLANNED", "repId": rep_b}, base=1)
    assert written["status"] == "APPLIED"
    delta = (await api.data(query, {"s": first["cursor"]}, device))["pull"]
    assert delta["records"] == [{"recordId": "v1", "version": 2, "fields": None, "outOfScope": True}]
