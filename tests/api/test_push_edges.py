"""The small holes around push and pull: forged cursors, aliased pushes, other reps' devices,
optional arguments, app versions stored as sent."""

import base64
import dataclasses
import json

import httpx

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import Api, through_both_paths
from tests.api.test_push_api import rep_with_device
from tests.factories import pushed_visit

settings = through_both_paths()

PULL = 'query($s: String){pull(deviceId:"dev1", since:$s){cursor}}'


async def test_a_forged_cursor_is_a_bad_request_that_says_so(api: Api):
    _, device = await rep_with_device(api)
    for payload in ({"s": 10**30}, {"s": 1, "w": -1}, {"s": True}):
        forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        body = await api.call(PULL, {"s": forged}, device)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST", error
        assert error["message"] == "the pull cursor is not one this server gave out"


async def test_aliases_do_not_get_around_the_per_push_change_cap(settings: Settings):
    app = create_app(dataclasses.replace(settings, max_changes_per_push=3))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http)
        await api.write("OUTLET", "o1", {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6})
        _, device = await rep_with_device(api)
        body = await api.call(
            "mutation($a: PushInput!, $b: PushInput!)"
            "{a: pushChanges(input:$a){syncId} b: pushChanges(input:$b){syncId}}",
            {
                "a": {"deviceId": "dev1", "changes": [pushed_visit(f"a{i}", f"va{i}") for i in range(2)]},
                "b": {"deviceId": "dev1", "changes": [pushed_visit(f"b{i}", f"vb{i}") for i in range(2)]},
            },
            device,
        )
    [error] = body["errors"]
    assert error["path"] == ["b"] and "at most 3 changes" in error["message"]


async def test_a_reps_user_token_naming_another_reps_device_files_nothing_under_that_device(api: Api):
    await rep_with_device(api, "Siti", "victim-phone")
    _, mallory_token = await api.user("Mallory", "REP")
    body = await api.call(
        "mutation($i: PushInput!){pushChanges(input:$i){syncId}}",
        {"i": {"deviceId": "victim-phone", "changes": []}},
        mallory_token,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    health = await api.data("query{syncHealth{reps{rep{name} pushRefusals{code device{id}}}}}")
    by_rep = {rep["rep"]["name"]: rep["pushRefusals"] for rep in health["syncHealth"]["reps"]}
    assert by_rep.get("Siti", []) == []
    assert [(r["code"], r["device"]) for r in by_rep["Mallory"]] == [("NOT_ALLOWED", None)]


async def test_arguments_with_defaults_take_null(api: Api):
    _, device = await rep_with_device(api)
    data = await api.data('query{pull(deviceId:"dev1", limit:null){hasMore}}', token=device)
    assert data["pull"]["hasMore"] is False
    data = await api.data("query{refusals(first:null){edges{cursor}} syncHistory(first:null){edges{cursor}}}")
    assert data["refusals"]["edges"] == []


async def test_the_app_version_is_stored_as_sent(api: Api):
    _, device = await rep_with_device(api)
    for version in ("$userId", "$$REMOVE"):
        await api.data(
            "mutation($i: PushInput!){pushChanges(input:$i){syncId}}",
            {"i": {"deviceId": "dev1", "changes": [], "appVersion": version}},
            device,
        )
        data = await api.data("query{devices{id appVersion}}")
        assert {d["id"]: d["appVersion"] for d in data["devices"]}["dev1"] == version
    body = await api.call(
        "mutation($i: PushInput!){pushChanges(input:$i){syncId}}",
        {"i": {"deviceId": "dev1", "changes": [], "appVersion": "9" * 65}},
        device,
    )
    assert "appVersion" in body["errors"][0]["message"]
