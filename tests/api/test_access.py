"""Identity: tokens, devices, roles. Errors here are GraphQL errors with a code."""

from tests.api.conftest import PUSH, Api


async def test_every_call_needs_a_valid_token(api: Api):
    for token in (None, "fs_not-a-real-token"):
        body = await api.call("query{me{id}}", token=token)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "fs_not" not in str(body)


async def test_pushes_need_a_device_token_for_that_very_device(api: Api):
    _, rep_token = await api.user("Ali", "REP")
    device = await api.device(rep_token, "dev1")
    empty = {"i": {"deviceId": "dev1", "changes": []}}
    assert (await api.call(PUSH, empty, rep_token))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = {"i": {"deviceId": "dev2", "changes": []}}
    assert (await api.call(PUSH, other, device))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.data(PUSH, empty, device))["pushChanges"]["results"] == []


async def test_a_device_id_belongs_to_one_rep(api: Api):
    _, ali = await api.user("Ali", "REP")
    _, siti = await api.user("Siti", "REP")
    await api.device(ali, "dev1")
    body = await api.call(
        'mutation{registerDevice(input:{deviceId:"dev1", name:"x", platform:"ios"}){token}}', token=siti
    )
    assert "another user" in body["errors"][0]["message"]


async def test_revoked_devices_and_tokens_stop_working_on_the_next_request(api: Api):
    _, rep_token = await api.user("Ali", "REP")
    device = await api.device(rep_token, "dev1")
    await api.data('mutation{revokeDevice(deviceId:"dev1"){revokedAt}}')
    body = await api.call(PUSH, {"i": {"deviceId": "dev1", "changes": []}}, device)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    _, manager = await api.user("Mia", "MANAGER")
    me = await api.data("query{users{id name}}", token=manager)
    assert {u["name"] for u in me["users"]} >= {"Ali", "Mia"}


async def test_roles_limit_what_each_caller_may_do(api: Api):
    _, rep = await api.user("Ali", "REP")
    _, manager = await api.user("Mia", "MANAGER")
    _, integrator = await api.user("Ian", "INTEGRATOR")
    create = 'mutation{createUser(input:{name:"x", role:ADMIN}){token}}'
    for token in (rep, manager, integrator):
        assert (await api.call(create, token=token))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    write = 'mutation{writeRecord(input:{recordType:PRODUCT, recordId:"p1", fields:{sku:"a"}}){status}}'
    for token in (rep, integrator):
        assert (await api.call(write, token=token))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin_id = (await api.data("query{me{id}}"))["me"]["id"]
    body = await api.call(f'mutation{{issueToken(userId:"{admin_id}"){{token}}}}', token=manager)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_rep_reads_the_outlets_its_records_point_at_and_no_others(api: Api):
    await api.write("OUTLET", "mine", {"name": "Kedai Ali"})
    await api.write("OUTLET", "elsewhere", {"name": "Kedai Siti"})
    rep_id, rep = await api.user("Ali", "REP")
    await api.write("VISIT", "v1", {"outletId": "mine", "repId": rep_id, "status": "PLANNED"})
    read = "query($r: ID!){record(recordType:OUTLET, recordId:$r){recordId}}"
    assert (await api.data(read, {"r": "mine"}, rep))["record"] == {"recordId": "mine"}
    assert (await api.data(read, {"r": "elsewhere"}, rep))["record"] is None
    assert (await api.data(read, {"r": "elsewhere"}))["record"] == {"recordId": "elsewhere"}
