import base64, json
from tests.api.conftest import Api, PUSH

AT = "2026-11-20T09:00:00+08:00"

def outlet(oid, **kw):
    c = {"offlineId": oid, "recordType": "OUTLET", "recordId": "o1", "operation": "UPSERT", "capturedAt": AT}
    c.update(kw)
    return c

async def test_scratch(api: Api):
    await api.write("OUTLET", "o1", {"name": "Kedai Ali"})
    _, rep = await api.user("Ali", "REP")
    dev = await api.device(rep, "dev1")
    async def post(body, label=""):
        try:
            r = await api.http.post("/graphql", content=body, headers={"Authorization": f"Bearer {dev}", "content-type": "application/json"})
            print(label, r.status_code, r.text[:500])
        except BaseException as e:
            print(label, "RAISED", type(e), str(e)[:200])
        print()
    async def push(changes, raw=None, label=""):
        body = json.dumps({"query": PUSH, "variables": {"i": {"deviceId": "dev1", "changes": changes}}})
        if raw:
            body = body.replace(*raw)
        await post(body, label)
    await push([outlet("a1", capturedAt="0001-01-01T00:00:00+08:00", fields={"name": "x"})], label="year1")
    await push([outlet("a2", capturedAt="9999-12-31T23:59:59-08:00", fields={"name": "y"})], label="year9999-8")
    await push([outlet("a3", capturedAt="9999-12-31T23:59:59+00:00", fields={"name": "z"})], label="9999")
    await push([outlet("a4", latitude=12345.5, fields={"name": "z"})], ("12345.5", "1e400"), label="lat1e400")
    await push([outlet("a5", latitude="NaN", fields={"name": "z"})], label="latNaNstr")
    await push([outlet("a5b", latitude=12345.5, fields={"name": "z"})], ("12345.5", "NaN"), label="latNaNlit")
    await push([outlet("a6", fields={"latitude": 12345.5})], ("12345.5", "1e400"), label="fieldlat1e400")
    await push([outlet("a7", crdtUpdate=base64.b64encode(b"\x01\x02\x03garbage").decode())], label="garbagecrdt")
    await push([outlet("a8", fields={"name": "a\u0000b"})], label="nul")
    await push([outlet("a9", fields={"name": "LONE"})], ('"LONE"', '"\\ud800"'), label="surrogate")
    await push([outlet("a10", fields={"name": "n"}), outlet("a10", fields={"name": "m"})], label="dup")
    await push([outlet("a12", fields={"geofenceRadiusM": 2**70})], label="bigint")
    await push([outlet("a14", fields={"name": "\u202eRTL \U0001F600"}, recordId="\U0001F600")], label="emoji")
    await push([{"offlineId": "v1", "recordType": "VISIT", "recordId": "v1", "operation": "UPSERT", "capturedAt": AT, "fields": {"outletId": "o1", "status": "PLANNED", "plannedAt": "0001-01-01T00:00:00+08:00"}}], label="visit-year1")
    await push([{"offlineId": "v2", "recordType": "ORDER", "recordId": "r1", "operation": "UPSERT", "capturedAt": AT, "fields": {"outletId": "o1", "status": "DRAFT", "lines": [{"productId": "p", "quantity": 2**70}]}}], label="order-bigint")
    await post('{"query": "{me{id}}", "variables": ' + '['*100000 + ']'*100000 + '}', "deep")
    await post(json.dumps({"query": 'mutation{pushChanges(input:{deviceId:"dev1", changes:[{offlineId:"q1", recordType:OUTLET, recordId:"o1", operation:UPSERT, capturedAt:"2026-11-20T09:00:00+08:00", fields:{name:"\\ud800"}}]}){results{status}}}'}), "literal-surrogate")
    await post(json.dumps({"query": 'mutation{pushChanges(input:{deviceId:"dev1", changes:[{offlineId:"q2", recordType:OUTLET, recordId:"o1", operation:UPSERT, capturedAt:"2026-11-20T09:00:00+08:00", fields:{geofenceRadiusM: 1180591620717411303424}}]}){results{status}}}'}), "literal-bigint")
    await post(json.dumps({"query": 'mutation{pushChanges(input:{deviceId:"dev1", changes:[{offlineId:"q3", recordType:OUTLET, recordId:"o1", operation:UPSERT, capturedAt:"2026-11-20T09:00:00+08:00", latitude: 1e400, fields:{geofenceRadiusM: 1e400}}]}){results{status}}}'}), "literal-inf")
    print(await api.call('query{record(recordType:OUTLET, recordId:"o1"){version fields}}'))
