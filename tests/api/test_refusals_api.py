"""Refusals from the dashboard's side: list, filter, acknowledge, dismiss."""

import dataclasses

import httpx

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import Api
from tests.factories import AT, pushed_visit

LIST = """query($f: RefusalFilter, $after: String){ refusals(filter:$f, first:2, after:$after){
  totalCount edges{ cursor node{ id code status action attempts rep{ name } device{ id } } }
  pageInfo{ hasNextPage endCursor } } }"""


def bad_quantity(offline_id: str):
    return {
        "offlineId": offline_id,
        "recordType": "ORDER",
        "recordId": f"or-{offline_id}",
        "operation": "UPSERT",
        "capturedAt": AT,
        "fields": {"outletId": "o1", "status": "DRAFT", "lines": [{"productId": "p1", "quantity": 0}]},
    }


async def setup(api: Api) -> tuple[str, str]:
    rep_id, rep = await api.user("Ali", "REP")
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "repIds": [rep_id]})
    await api.write("PRODUCT", "p1", {"sku": "M", "name": "Milo", "unitPrice": 3})
    return rep, await api.device(rep, "dev1")


async def test_the_rep_acknowledges_what_cannot_be_fixed_and_a_manager_dismisses_the_rest(api: Api):
    _, device = await setup(api)
    results = await api.push(device, "dev1", [bad_quantity("a"), pushed_visit("b", "v1", "gone")])
    ack_id, fix_id = (r["refusal"]["id"] for r in results)
    assert [r["refusal"]["action"] for r in results] == ["ACKNOWLEDGE", "FIX_DATA"]
    body = await api.call(f'mutation{{acknowledgeRefusal(id:"{fix_id}"){{status}}}}', token=device)
    assert "fix the data" in body["errors"][0]["message"]
    acked = await api.data(f'mutation{{acknowledgeRefusal(id:"{ack_id}"){{status resolvedAt}}}}', token=device)
    assert acked["acknowledgeRefusal"]["status"] == "ACKNOWLEDGED"
    _, manager = await api.user("Mia", "MANAGER")
    dismissed = await api.data(
        f'mutation{{dismissRefusal(id:"{fix_id}", note:"visit cancelled by phone"){{status note}}}}', token=manager
    )
    assert dismissed["dismissRefusal"] == {"status": "DISMISSED", "note": "visit cancelled by phone"}
    # Nothing blocks any more: the device's next change goes through.
    [after] = await api.push(device, "dev1", [pushed_visit("c", "v2")])
    assert after["status"] == "APPLIED"
    history = await api.data(
        "query{syncHistory(filter:{actions:[REFUSAL_ACKNOWLEDGED, REFUSAL_DISMISSED]}){edges{node{action detail}}}}"
    )
    assert [e["node"]["action"] for e in history["syncHistory"]["edges"]] == [
        "REFUSAL_ACKNOWLEDGED",
        "REFUSAL_DISMISSED",
    ]


async def test_refusals_page_oldest_first_and_filter_by_status(api: Api):
    _, device = await setup(api)
    await api.push(device, "dev1", [bad_quantity(str(i)) for i in range(5)])
    first = (await api.data(LIST, {"f": {"status": ["OPEN"]}}))["refusals"]
    assert first["totalCount"] == 5 and first["pageInfo"]["hasNextPage"]
    seen = [e["node"]["id"] for e in first["edges"]]
    after = first["pageInfo"]["endCursor"]
    while after:
        page = (await api.data(LIST, {"f": {"status": ["OPEN"]}, "after": after}))["refusals"]
        seen += [e["node"]["id"] for e in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    assert len(seen) == len(set(seen)) == 5
    node = first["edges"][0]["node"]
    assert (node["rep"]["name"], node["device"]["id"], node["attempts"]) == ("Ali", "dev1", 1)
    assert (await api.data(LIST, {"f": {"status": ["RESOLVED"]}}))["refusals"]["totalCount"] == 0


async def test_a_rep_sees_only_its_own_refusals_and_health(api: Api):
    _, device = await setup(api)
    await api.push(device, "dev1", [bad_quantity("a")])
    _, other = await api.user("Siti", "REP")
    assert (await api.data(LIST, token=other))["refusals"]["totalCount"] == 0
    health = await api.data("query{syncHealth{reps{rep{name} status}}}", token=other)
    assert [r["rep"]["name"] for r in health["syncHealth"]["reps"]] == ["Siti"]
    everyone = await api.data("query{syncHealth{reps{rep{name} status openRefusals{code}}}}")
    assert {r["rep"]["name"]: r["status"] for r in everyone["syncHealth"]["reps"]} == {
        "Ali": "NEEDS_ATTENTION",
        "Siti": "STALE",
    }


async def test_a_push_from_a_revoked_device_is_a_push_refusal_shown_under_its_rep(api: Api):
    _, device = await setup(api)
    await api.data('mutation{revokeDevice(deviceId:"dev1"){id}}')
    body = await api.call('mutation{pushChanges(input:{deviceId:"dev1", changes:[]}){syncId}}', token=device)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    health = await api.data("query{syncHealth{reps{rep{name} pushRefusals{kind code reason device{id}}}}}")
    [ali] = health["syncHealth"]["reps"]
    assert ali["pushRefusals"][0]["kind"] == "PUSH" and ali["pushRefusals"][0]["code"] == "REVOKED"
    assert ali["pushRefusals"][0]["device"]["id"] == "dev1"


async def test_record_blocking_lets_unrelated_changes_through(settings: Settings):
    app = create_app(dataclasses.replace(settings, blocking="record"))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http)
        _, device = await setup(api)
        results = await api.push(
            device, "dev1", [pushed_visit("a", "v1", "gone"), pushed_visit("b", "v2"), pushed_visit("c", "v1", "o1")]
        )
    assert [r["status"] for r in results] == ["REFUSED", "APPLIED", "BLOCKED"]


async def test_pushes_turned_away_before_any_change_is_read_are_recorded_under_the_rep(settings: Settings):
    app = create_app(dataclasses.replace(settings, max_body_bytes=20_000))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http)
        _, device = await setup(api)
        headers = {"Authorization": f"Bearer {device}", "Content-Type": "application/json"}
        not_json = await http.post("/graphql", content=b'{"query": "mutation{pushChanges', headers=headers)
        assert not_json.status_code == 400
        bad_bytes = {
            "offlineId": "x",
            "recordType": "OUTLET",
            "recordId": "o1",
            "operation": "UPSERT",
            "capturedAt": AT,
            "crdtUpdate": "%%%",
        }
        body = await api.call(
            "mutation($i: PushInput!){pushChanges(input:$i){syncId}}",
            {"i": {"deviceId": "dev1", "changes": [bad_bytes]}},
            device,
        )
        assert "base64" in body["errors"][0]["message"]
        too_big = await http.post("/graphql", content=b"{" + b" " * 30_000 + b"}", headers=headers)
        assert too_big.status_code == 413
        anonymous = await http.post("/graphql", content=b"{" + b" " * 30_000 + b"}")
        assert anonymous.status_code == 413
        health = await api.data("query{syncHealth{reps{rep{name} pushRefusals{code reason device{id}}}}}")
    [ali] = health["syncHealth"]["reps"]
    codes = sorted(r["code"] for r in ali["pushRefusals"])
    assert codes == ["MALFORMED_PUSH", "MALFORMED_PUSH", "PAYLOAD_TOO_LARGE"]
    assert {r["device"]["id"] for r in ali["pushRefusals"]} == {"dev1"}
