"""A push or a pull from a remembered token confirms in its own commit or first read that nothing was revoked
since the token was checked: a revocation written by any instance turns the next push away, commits none of it,
and turns the next pull away."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import PUSH, Api, through_both_paths
from tests.factories import pushed_visit

settings = through_both_paths()


@asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[Api]:
    """Another service instance on the same store."""
    app = create_app(settings)
    if settings.prepared_operations:
        app.state.fieldsync["prepared"].learn(PUSH)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://other.test") as http,
    ):
        yield Api(http)


async def test_a_revocation_on_one_instance_turns_away_the_next_push_and_pull_on_another_that_remembers_the_token(
    api: Api, settings: Settings
):
    rep_id, rep = await api.user("Ali", "REP")
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "repIds": [rep_id]})
    device, kept, third = await api.device(rep, "dev1"), await api.device(rep, "dev2"), await api.device(rep, "dev3")
    async with instance(settings) as other:
        for token, device_id in ((device, "dev1"), (kept, "dev2"), (third, "dev3")):  # checked, then remembered
            [applied] = await other.push(token, device_id, [pushed_visit(f"c-{device_id}", f"v-{device_id}")])
            assert applied["status"] == "APPLIED"
        await api.data('mutation{revokeDevice(deviceId:"dev1"){revokedAt}}')
        body = await other.call(PUSH, {"i": {"deviceId": "dev1", "changes": [pushed_visit("c2", "v2")]}}, device)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert body["errors"][0]["message"] == "token revoked"
        pull = "query($d: ID!){pull(deviceId:$d){cursor}}"
        assert (await other.data(pull, {"d": "dev2"}, kept))["pull"]["cursor"]  # remembered: none revoked since
        await api.data('mutation{revokeDevice(deviceId:"dev2"){revokedAt}}')
        body = await other.call(pull, {"d": "dev2"}, kept)
        assert (body["errors"][0]["extensions"]["code"], body["errors"][0]["message"]) == (
            "UNAUTHENTICATED",
            "token revoked",
        )
        [kept_working] = await other.push(third, "dev3", [pushed_visit("c3", "v3")])  # another device's token
        assert kept_working["status"] == "APPLIED"
    read = "query($r: ID!){record(recordType:VISIT, recordId:$r){version}}"
    assert (await api.data(read, {"r": "v2"}))["record"] is None  # nothing of the refused push committed
    assert (await api.data(read, {"r": "v3"}))["record"] == {"version": 1}
    refusals = await api.data("query{refusals{edges{node{code deviceId}}}}")
    assert {"code": "REVOKED", "deviceId": "dev1"} in [e["node"] for e in refusals["refusals"]["edges"]]
