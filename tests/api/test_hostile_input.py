"""Hostile input: every malformed, oversized or adversarial request gets a clear answer, changes nothing
it should not, and the server keeps serving.

An answer is either a request error (HTTP 4xx with a GraphQL-style JSON error, or a GraphQL
validation error) or a per-change REFUSED with a reason. Stored data is compared before and
after through the ``record`` and ``pull`` queries.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from service.settings import Settings
from tests.api.conftest import PUSH, Api
from tests.factories import AT, pushed_visit

KB = 1024
MAX_BODY = 512 * KB
MAX_UPDATE = 48 * KB
MAX_RECORD = 64 * KB
MAX_CHANGES = 20
REQUEST_ERROR_CODES = {"BAD_REQUEST", "PAYLOAD_TOO_LARGE", "QUERY_TOO_COMPLEX"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        max_body_bytes=MAX_BODY,
        max_crdt_update_bytes=MAX_UPDATE,
        max_record_bytes=MAX_RECORD,
        max_changes_per_push=MAX_CHANGES,
    )


@dataclass
class Field:
    """An outlet, a rep's device and its visit: the data hostile requests must leave alone."""

    api: Api
    device: str
    next_device: int = 1

    async def snapshot(self) -> Any:
        records = await self.api.data(
            'query{o: record(recordType:OUTLET, recordId:"o1"){version fields crdtState}'
            ' v: record(recordType:VISIT, recordId:"v1"){version fields}}'
        )
        pulled = await self.api.data(
            'query{pull(deviceId:"dev1"){records{recordType recordId version fields}}}', token=self.device
        )
        return records, sorted(pulled["pull"]["records"], key=lambda r: (r["recordType"], r["recordId"]))

    async def post(self, body: bytes | str, content_type: str = "application/json", token: str | None = None):
        headers = {"content-type": content_type, "Authorization": f"Bearer {token or self.device}"}
        return await self.api.http.post("/graphql", content=body, headers=headers)

    async def push(self, changes: list[dict[str, Any]], device: tuple[str, str] | None = None) -> dict[str, Any]:
        """The response body of a push from dev1 (or ``device``: (id, token))."""
        device_id, token = device or ("dev1", self.device)
        return await self.api.call(PUSH, {"i": {"deviceId": device_id, "changes": changes}}, token)

    async def fresh_device(self) -> tuple[str, str]:
        """Another device of the same rep, so a refusal that blocks one queue does not hide the next probe."""
        self.next_device += 1
        device_id = f"dev{self.next_device}"
        rep = (await self.api.data("query{me{id}}", token=self.device))["me"]["id"]
        token = (await self.api.data(f'mutation{{issueToken(userId:"{rep}"){{token}}}}'))["issueToken"]["token"]
        return device_id, await self.api.device(token, device_id)

    async def still_serving(self) -> None:
        assert (await self.api.data("query{me{id}}", token=self.device))["me"]["id"]


@pytest.fixture
async def field(api: Api) -> Field:
    rep_id, rep = await api.user("Ali", "REP")
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "latitude": 3.139, "longitude": 101.6869, "repIds": [rep_id]})
    device = await api.device(rep, "dev1")
    assert (await api.push(device, "dev1", [pushed_visit("c1", "v1")]))[0]["status"] == "APPLIED"
    return Field(api, device)


def outlet(offline_id: str, record_id: str = "o1", **change: Any) -> dict[str, Any]:
    return {
        "offlineId": offline_id,
        "recordType": "OUTLET",
        "recordId": record_id,
        "operation": "UPSERT",
        "capturedAt": AT,
        **change,
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def request_error(body: dict[str, Any]) -> str:
    """The message of a request-level error: a GraphQL validation error or a BAD_REQUEST-like code."""
    assert body.get("data") is None, body
    [error] = body["errors"][:1]
    code = (error.get("extensions") or {}).get("code")
    assert code in REQUEST_ERROR_CODES or (code is None and "path" not in error), body
    assert error["message"]
    return error["message"]


def only_result(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body
    [result] = body["data"]["pushChanges"]["results"]
    return result


def refused(body: dict[str, Any], code: str | None = None) -> str:
    result = only_result(body)
    assert result["status"] == "REFUSED", result
    if code is not None:
        assert result["refusal"]["code"] == code, result["refusal"]
    assert result["refusal"]["reason"]
    return result["refusal"]["reason"]


# -- malformed requests -----------------------------------------------------------------------


MALFORMED_BODIES = [
    (b"{not json", "application/json", "JSON"),
    (b'{"query": "{me{id}}"', "application/json", "JSON"),
    (b"\xff\xfe{\x00}", "application/json", "UTF-8"),
    (b"", "application/json", "JSON"),
    (b"null", "application/json", "object"),
    (b'"query"', "application/json", "object"),
    (b"42", "application/json", "object"),
    (b"[]", "application/json", "Batching"),
    (b'{"query": 42}', "application/json", "query"),
    (b'{"query": "{me{id}}", "variables": [1]}', "application/json", "variables"),
    (b'{"query": "{me{id}}", "variables": {"x": NaN}}', "application/json", "NaN"),
    (b'{"query": "{me{id}}", "variables": {"x": -Infinity}}', "application/json", "Infinity"),
    (b'{"query": "{me{id}}", "variables": {"x": 1e400}}', "application/json", "out of range"),
    (b'{"query": "{me{id}}", "variables": {"x": 123456789012345678901234567890}}', "application/json", "integers"),
    (b'{"query": "{me{id}}", "variables": {"x": "\\udc00"}}', "application/json", "surrogate"),
    (b'{"query": "{me{id}}", "variables": {"\\uDC00": 1}}', "application/json", "surrogate"),
    (b'{"query": "{me{id}}", "variables": {"i": {"fields": {"a\\u0000b": null}}}}', "application/json", "NUL"),
    (b'{"query": "{me{id}}", "variables": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", "nested"),
    (b"query=%7Bme%7Bid%7D%7D", "application/x-www-form-urlencoded", "content type"),
    (b"{me{id}}", "text/plain", "content type"),
]


async def test_malformed_bodies_get_a_400_json_error_and_change_nothing(field: Field):
    before = await field.snapshot()
    wrong = []
    for body, content_type, says in MALFORMED_BODIES:
        response = await field.post(body, content_type)
        error = response.json()["errors"][0] if response.headers.get("content-type") == "application/json" else {}
        if (response.status_code, (error.get("extensions") or {}).get("code")) != (
            400,
            "BAD_REQUEST",
        ) or says.lower() not in error["message"].lower():
            wrong.append(f"{body[:60]!r}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)
    await field.still_serving()
    assert await field.snapshot() == before


async def test_bodies_over_the_limit_are_413_declared_or_streamed(field: Field):
    big = json.dumps({"query": PUSH, "variables": {"i": {"deviceId": "dev1", "changes": [], "x": "a" * MAX_BODY}}})
    response = await field.post(big)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks():  # no content-length: counted as it arrives
        for _ in range(MAX_BODY // (64 * KB) + 2):
            yield b" " * (64 * KB)

    streamed = await field.api.http.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json", "Authorization": "Bearer x"}
    )
    assert streamed.status_code == 413
    await field.still_serving()


WRONG_TYPES = [
    ({"changes": "not a list"}, "changes"),
    ({"changes": [pushed_visit("w1", "v9") | {"recordType": "SPACESHIP"}]}, "SPACESHIP"),
    ({"changes": [pushed_visit("w2", "v9") | {"operation": "DROP"}]}, "DROP"),
    ({"changes": [pushed_visit("w3", "v9") | {"baseVersion": "1"}]}, "baseVersion"),
    ({"changes": [pushed_visit("w4", "v9") | {"baseVersion": 2**31}]}, "baseVersion"),
    ({"changes": [pushed_visit("w5", "v9") | {"capturedAt": 1732000000}]}, "capturedAt"),
    ({"changes": [pushed_visit("w6", "v9") | {"capturedAt": "yesterday"}]}, "ISO 8601"),
    ({"changes": [pushed_visit("w7", "v9") | {"offlineId": {"$gt": ""}}]}, "offlineId"),
    ({"changes": [pushed_visit("w8", "v9") | {"recordId": None}]}, "recordId"),
    ({"changes": [pushed_visit("w9", "v9") | {"latitude": "NaN"}]}, "latitude"),
    ({"changes": [pushed_visit("w10", "v9") | {"longitude": True}]}, "longitude"),
    ({"changes": [pushed_visit("w11", "v9") | {"crdtUpdate": 5}]}, "Base64"),
    ({"changes": [pushed_visit("w12", "v9") | {"unknownField": 1}]}, "unknownField"),
    ({"changes": [], "queueDepth": "many"}, "queueDepth"),
]


async def test_wrong_types_are_validation_errors_naming_the_input(field: Field):
    before = await field.snapshot()
    for change, says in WRONG_TYPES:
        message = request_error(await field.api.call(PUSH, {"i": {"deviceId": "dev1", **change}}, field.device))
        assert says in message, message
    await field.still_serving()
    assert await field.snapshot() == before


# -- sizes ------------------------------------------------------------------------------------


async def test_enormous_values_are_refused_with_the_limit_named(field: Field):
    before = await field.snapshot()
    body = await field.push([pushed_visit("z1", "v" * 5000)])
    assert "recordId must be 1 to 200 characters" in request_error(body)
    body = await field.push([pushed_visit("o" * 5000, "v2")])
    assert "offlineId must be 1 to 200 characters" in request_error(body)
    body = await field.push([pushed_visit(str(i), f"v{i}") for i in range(MAX_CHANGES + 1)])
    assert f"at most {MAX_CHANGES} changes" in request_error(body)
    assert "longer than 10000 characters" in refused(await field.push([pushed_visit("z2", "v1", notes="n" * 20_000)]))
    assert "longer than 10000" in refused(await field.push([outlet("z3", fields={"name": "n" * 10_001})]))
    too_big = Doc()
    too_big.get("notes", type=Text).insert(0, "x" * (MAX_UPDATE + 1))
    body = await field.push([outlet("z4", crdtUpdate=b64(too_big.get_update()))])
    assert f"the limit is {MAX_UPDATE}" in refused(body, "TOO_LARGE")
    await field.still_serving()
    assert await field.snapshot() == before


async def test_an_update_that_would_grow_a_shared_record_past_the_limit_is_refused(field: Field):
    device = await field.fresh_device()
    doc = Doc()
    notes = doc.get("notes", type=Text)
    notes.insert(0, "a" * (MAX_RECORD // 2))
    first = only_result(await field.push([outlet("g1", "o2", crdtUpdate=b64(doc.get_update()))], device))
    assert (first["status"], first["record"]["version"]) == ("MERGED", 1)
    state = doc.get_state()
    notes.insert(0, "b" * (MAX_RECORD // 2 + KB))
    grow = doc.get_update(state)
    assert len(grow) < MAX_UPDATE  # each update is within its own limit
    assert "would grow to" in refused(await field.push([outlet("g2", "o2", crdtUpdate=b64(grow))], device), "TOO_LARGE")
    stored = await field.api.data('query{record(recordType:OUTLET, recordId:"o2"){version fields}}')
    assert stored["record"]["version"] == 1 and len(stored["record"]["fields"]["notes"]) == MAX_RECORD // 2


async def test_an_owned_record_larger_than_the_record_limit_is_refused(field: Field):
    hours = [{"hours": 1, "loggedAt": "2026-11-20T09:00:00.000000+08:00"} for _ in range(1000)]
    work_order = {
        "offlineId": "big",
        "recordType": "WORK_ORDER",
        "recordId": "w1",
        "operation": "UPSERT",
        "capturedAt": AT,
        "fields": {"outletId": "o1", "status": "OPEN", "description": "d" * 10_000, "resourceHours": hours},
    }
    assert len(json.dumps(work_order["fields"])) > MAX_RECORD
    refused(await field.push([work_order]), "TOO_LARGE")


async def test_refusal_reasons_stay_short_whatever_the_input(field: Field):
    reason = refused(await field.push([pushed_visit("long-key", "v7", **{"k" * 100_000: 1})]))
    assert len(reason) < 1000


async def test_deeply_nested_json_in_fields_is_a_request_error(field: Field):
    before = await field.snapshot()
    nested: Any = "leaf"
    for _ in range(9):
        nested = {"n": nested}
    message = request_error(await field.push([outlet("deep1", fields={"name": nested})]))
    assert "nested deeper than 8 levels" in message
    for _ in range(100):
        nested = [nested]
    response = await field.post(
        json.dumps(
            {
                "query": PUSH,
                "variables": {"i": {"deviceId": "dev1", "changes": [outlet("deep2", fields={"name": nested})]}},
            }
        )
    )
    assert response.status_code == 400 and "nested deeper" in response.json()["errors"][0]["message"]
    await field.still_serving()
    assert await field.snapshot() == before


# -- queries ------------------------------------------------------------------------------------


def fragment_bomb(levels: int, width: int = 4) -> str:
    """A few hundred bytes that expand to width**levels selections of ``me``."""
    fragments = ["fragment F0 on User { id name role active }"]
    fragments += [f"fragment F{i} on User {{ {' '.join([f'...F{i - 1}'] * width)} }}" for i in range(1, levels + 1)]
    return f"query {{ me {{ ...F{levels} }} }}\n" + "\n".join(fragments)


async def test_expensive_queries_are_refused_before_they_run(field: Field):
    started = time.monotonic()
    body = await field.api.call(fragment_bomb(12))  # 4**12 selections: validating it naively takes minutes
    assert time.monotonic() - started < 1.0
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX" and "more than 500 fields" in error["message"]
    for _ in range(2):  # validated documents are kept: the limits hold for a repeated text too
        wide = "query{" + " ".join(f"a{i}: me {{ id }}" for i in range(25)) + " users{" + "id name " * 240 + "}}"
        assert request_error(await field.api.call(wide)).endswith("ask for fewer fields or split the query")
        chain = "query { me { ...F40 } }\nfragment F0 on User { id }\n" + "\n".join(
            f"fragment F{i} on User {{ ...F{i - 1} }}" for i in range(1, 41)
        )
        assert "nested more than 32 deep" in request_error(await field.api.call(chain))
        dashboard = (
            "query{ syncHealth{ reps{ devices{ device{ user{ id } } } openRefusals{ device{ user{ id } } } } } }"
        )
        assert (await field.api.data(dashboard))["syncHealth"] is not None  # a real dashboard query passes
        too_deep = "query{me{" + "a{" * 12 + "b" + "}" * 12 + "}}"
        assert any(
            "exceeds maximum operation depth" in e["message"] for e in (await field.api.call(too_deep))["errors"]
        )
        body = await field.api.call("query{" + " ".join(f"a{i}: me{{id}}" for i in range(31)) + "}")
        assert "aliases" in request_error(body)
        body = await field.api.call("query{me{" + "id " * 5001 + "}}")
        assert "tokens" in request_error(body)
        huge = 'mutation{writeRecord(input:{recordType:OUTLET, recordId:"o1", fields:{geofenceRadiusM: 9%s}}){status}}'
        body = await field.api.call(huge % ("0" * 30))
        assert "integers must be within" in request_error(body)
    await field.still_serving()


async def test_introspection_and_graphiql_follow_their_settings(settings: Settings):
    from tests.api.test_authorization_matrix import serve_in_process

    introspect = 'query{__schema{queryType{name}} __type(name:"User"){name}}'
    async with serve_in_process(settings) as open_:
        assert (await open_.api.data(introspect))["__schema"]["queryType"]["name"] == "Query"
        page = await open_.api.http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
    closed_settings = dataclasses.replace(settings, introspection=False, graphiql=False)
    async with serve_in_process(closed_settings) as closed:
        for query in (introspect, 'query{__type(name:"User"){fields{name}}}'):
            assert "introspection" in request_error(await closed.api.call(query)).lower()
        assert (await closed.api.data("query{__typename me{id}}"))["__typename"] == "Query"
        page = await closed.api.http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404 and page.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        via_get = await closed.api.http.get("/graphql", params={"query": "{me{id}}"})
        assert via_get.status_code == 400 and "not allowed when using GET" in via_get.json()["errors"][0]["message"]


# -- CRDT bytes -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["%%%", "abc", "YQ", "YQ==\n", "YQ===", "ÿ", " "])
async def test_invalid_base64_is_a_request_error(field: Field, value: str):
    for name in ("crdtUpdate", "stateVector"):
        message = request_error(await field.push([outlet(f"b-{name}", **{name: value})]))
        assert "base64" in message, message
    await field.still_serving()


async def test_corrupted_and_adversarial_yjs_updates_are_refused_and_leave_the_record_alone(field: Field):
    before = await field.snapshot()
    device = await field.fresh_device()
    good = Doc()
    good.get("fields", type=Map)["phone"] = "03-1234"
    update = good.get_update()
    rng = random.Random(5)
    wrong_type = Doc()
    wrong_type.get("fields", type=Map)["latitude"] = "north"
    unknown = Doc()
    unknown.get("fields", type=Map)["$where"] = "sleep(1000)"
    nested = Doc()
    nested.get("fields", type=Map)["name"] = Map({"first": "Kedai"})
    cases = {
        "truncated": update[: len(update) // 2],
        "one byte short": update[:-1],
        "garbage": b"\x01\x02\x03garbage",
        "huge varint": b"\xff" * 12,
        "wrong type": wrong_type.get_update(),
        "unknown field": unknown.get_update(),
        "nested type": nested.get_update(),
        **{f"random {n}": rng.randbytes(rng.randint(1, 64)) for n in range(8)},
    }
    for label, data in cases.items():
        # A fresh outlet each: on a shared one, a value of the wrong type can lose the merge to a newer
        # valid one, and a merge that leaves the record valid is rightly accepted.
        change = outlet(f"y-{label}", f"fresh-{label}", crdtUpdate=b64(data))
        result = only_result(await field.push([change], device))
        assert result["status"] in ("REFUSED", "UNCHANGED"), (label, result)
        if result["status"] == "REFUSED":
            assert result["refusal"]["reason"], label
    bad_vector = only_result(
        await field.push([outlet("y-sv", crdtUpdate=b64(b"\x00\x00"), stateVector=b64(b"\xff"))], device)
    )
    assert bad_vector["status"] == "REFUSED" and bad_vector["refusal"]["code"] == "CRDT_UNDECODABLE"
    await field.still_serving()
    assert await field.snapshot() == before


# -- numbers, timestamps, text ------------------------------------------------------------------


async def test_non_finite_and_out_of_range_coordinates_are_refused(field: Field):
    before = await field.snapshot()
    change = json.dumps(
        {
            "query": PUSH,
            "variables": {
                "i": {"deviceId": "dev1", "changes": [outlet("nan1", fields={"name": "x"}, latitude=12345.5)]}
            },
        }
    )
    for literal in ("1e400", "-1e400", "NaN", "Infinity"):
        response = await field.post(change.replace("12345.5", literal))
        assert response.status_code == 400, literal
    assert "must be a finite number" in refused(await field.push([outlet("nan2", fields={"latitude": "NaN"})]))
    assert "between -90 and 90" in refused(await field.push([outlet("nan3", fields={"latitude": 1e300})]))
    assert "between -180 and 180" in refused(await field.push([outlet("nan4", fields={"longitude": -181})]))
    await field.still_serving()
    assert await field.snapshot() == before


async def test_an_impossible_geo_stamp_is_refused_as_the_devices_error(field: Field):
    check_in = pushed_visit("geo", "v5", status="CHECKED_IN") | {"latitude": 500.0, "longitude": 101.6869}
    result = only_result(await field.push([check_in], await field.fresh_device()))
    assert (result["refusal"]["code"], result["refusal"]["action"]) == ("INVALID_FIELD", "ACKNOWLEDGE")


async def test_timestamps_without_an_offset_are_refused(field: Field):
    before = await field.snapshot()
    assert "without a UTC offset" in refused(
        await field.push([pushed_visit("ts1", "v1") | {"capturedAt": "2026-11-20T09:00:00"}]), "MISSING_UTC_OFFSET"
    )
    await field.still_serving()
    assert await field.snapshot() == before


@pytest.mark.parametrize(
    "captured_at",
    ["0001-01-01T00:00:00+14:00", "1999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00", "2099-01-01T00:00:00Z"],
)
async def test_implausible_capture_times_are_refused_per_change(field: Field, captured_at: str):
    # A far-future capturedAt would win every later last-writer-wins merge of the outlet's fields for good.
    result = only_result(
        await field.push([outlet("far", fields={"name": "Pinned"}, capturedAt=captured_at)], await field.fresh_device())
    )
    assert result["status"] == "REFUSED", result
    assert result["refusal"]["field"] == "capturedAt"


async def test_unicode_edge_cases_round_trip_exactly_or_are_refused(field: Field):
    before = await field.snapshot()
    # a lone surrogate, escaped in the JSON body or in a GraphQL string literal
    response = await field.post(
        json.dumps(
            {
                "query": PUSH,
                "variables": {"i": {"deviceId": "dev1", "changes": [outlet("u1", fields={"name": "LONE"})]}},
            }
        ).replace('"LONE"', '"\\ud800"')
    )
    assert response.status_code == 400 and "surrogate" in response.json()["errors"][0]["message"]
    literal = (
        'mutation{pushChanges(input:{deviceId:"dev1", changes:[{offlineId:"u2", recordType:OUTLET,'
        ' recordId:"o1", operation:UPSERT, capturedAt:"2026-11-20T09:00:00+08:00",'
        ' fields:{name:"\\udc00"}}]}){syncId}}'
    )
    assert "Unicode" in request_error(await field.api.call(literal, token=field.device))
    # NUL and bidirectional overrides in ids are refused: they make ids read other than they are
    device = await field.fresh_device()
    for offline_id, record_id in [("u3\u0000", "o1\u0000evil"), ("u4-\u202e", "\u202eo1")]:
        assert "control characters" in request_error(await field.push([outlet(offline_id, record_id)], device))
    # in field values they are data; zero-width joiners and emoji are fine in ids: stored and returned exactly
    for offline_id, record_id, name in [
        ("u3", "o-nul", "nul\u0000inside"),
        ("u4", "o-rtl", "\u202eilA iadeK"),
        ("u5-😀", "😀👨‍👩‍👧", "Kedai 😀 علي"),
        ("u6", "o1\u200b", "zero\u200bwidth"),
    ]:
        result = only_result(await field.push([outlet(offline_id, record_id, fields={"name": name})], device))
        assert (result["status"], result["record"]["recordId"]) == ("MERGED", record_id)
        by_id = "query($r: ID!){record(recordType:OUTLET, recordId:$r){fields}}"
        stored = await field.api.data(by_id, {"r": record_id})
        assert stored["record"]["fields"]["name"] == name
    await field.still_serving()
    records, pulled = await field.snapshot()
    created = {"o-nul", "o-rtl", "😀👨‍👩‍👧", "o1\u200b"}  # the rep's device created them: now in its pulls
    assert {r["recordId"] for r in pulled} - {r["recordId"] for r in before[1]} == created
    assert (records, [r for r in pulled if r["recordId"] not in created]) == before  # o1 itself untouched


async def test_an_offline_id_repeated_inside_one_push_is_decided_once(field: Field):
    device = await field.fresh_device()
    results = (
        await field.push(
            [pushed_visit("same", "v20"), pushed_visit("same", "v20"), pushed_visit("same", "v20", status="CANCELLED")],
            device,
        )
    )["data"]["pushChanges"]["results"]
    assert [r["status"] for r in results] == ["APPLIED", "DUPLICATE", "REFUSED"]
    assert results[1]["duplicateOf"] == "APPLIED"
    assert results[2]["refusal"]["code"] == "OFFLINE_ID_REUSED"
    stored = await field.api.data(
        'query{a: record(recordType:VISIT, recordId:"v20"){version fields}'
        ' b: record(recordType:VISIT, recordId:"v21"){version}}'
    )
    assert (stored["a"]["version"], stored["a"]["fields"]["status"], stored["b"]) == (1, "PLANNED", None)


# -- fuzzing ------------------------------------------------------------------------------------

ids = st.text(min_size=0, max_size=30)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "name",
        "latitude",
        "longitude",
        "status",
        "outletId",
        "repId",
        "lines",
        "tags",
        "notes",
        "deleted",
        "resourceHours",
        "plannedAt",
        "unitPrice",
        "x",
    ]
)
change_inputs = st.fixed_dictionaries(
    {
        "offlineId": ids,
        "recordType": st.sampled_from(["OUTLET", "PRODUCT", "VISIT", "ORDER", "WORK_ORDER"]),
        "recordId": st.sampled_from(["o1", "v1", "p1", "w1", "new"]) | ids,
        "operation": st.sampled_from(["UPSERT", "DELETE"]),
        "capturedAt": st.sampled_from([AT, "2026-11-20T09:00:00", "2026-11-20T01:00:00Z", "nope", ""]),
    },
    optional={
        "baseVersion": st.none() | st.integers(-3, 5),
        "fields": st.none() | st.dictionaries(field_names, json_value, max_size=5) | json_value,
        "crdtUpdate": st.none() | st.binary(max_size=80).map(b64),
        "stateVector": st.none() | st.binary(max_size=20).map(b64),
        "latitude": st.none() | st.floats(-1e6, 1e6),
        "longitude": st.none() | st.floats(-1e6, 1e6),
    },
)
FUZZ_IDS = itertools.count()
FUZZ = hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_answered(body: dict[str, Any]) -> None:
    """A push answer with no error but validation and BAD_REQUEST: never an internal error."""
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        assert code in REQUEST_ERROR_CODES or (code is None and "path" not in error), error
    results = ((body.get("data") or {}).get("pushChanges") or {}).get("results") or []
    for result in results:
        assert result["status"] in ("APPLIED", "MERGED", "UNCHANGED", "DUPLICATE", "CONFLICT", "REFUSED", "BLOCKED")


@FUZZ
@given(changes=st.lists(change_inputs, min_size=1, max_size=4))
async def test_fuzzed_pushes_are_answered_never_crash(field: Field, changes: list[dict[str, Any]]):
    device_id, token = await field.fresh_device()  # a refusal that blocks the queue must not hide the next example
    push = {"query": PUSH, "variables": {"i": {"deviceId": device_id, "changes": changes}}}
    response = await field.post(json.dumps(push), token=token)
    assert response.status_code in (200, 400), response.text
    assert_answered(response.json())


@FUZZ
@given(data=st.binary(min_size=0, max_size=200), vector=st.none() | st.binary(max_size=16), cut=st.integers(0, 200))
async def test_fuzzed_yjs_bytes_through_push_are_answered_never_crash(field: Field, data: bytes, vector, cut: int):
    # half of the examples start from a real update, cut or spliced with the random bytes
    doc = Doc()
    doc.get("fields", type=Map)["phone"] = "03-1234"
    real = doc.get_update()
    payload = data if cut % 2 else real[: cut % (len(real) + 1)] + data[:8]
    change = outlet(f"fuzz-{next(FUZZ_IDS)}", crdtUpdate=b64(payload))
    if vector is not None:
        change["stateVector"] = b64(vector)
    body = await field.push([change])
    assert_answered(body)
    [result] = body["data"]["pushChanges"]["results"]
    assert result["status"] in ("MERGED", "UNCHANGED", "REFUSED", "DUPLICATE")
