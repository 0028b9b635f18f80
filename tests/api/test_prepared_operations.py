"""Prepared operations answer exactly as GraphQL execution does.

The same generated session (outlets, owned and shared changes, duplicates, stale bases that
conflict, refusals and what they block, reused offlineIds, aliases, partial selections,
``__typename``, pulls, bad requests) runs against two apps, one answering through prepared
operations and one through the general path, and every answer must be the same once the
values that are new each time (ids, clocks) are masked.
"""

from __future__ import annotations

import base64
import dataclasses
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pycrdt import Doc, Map
from pymongo import AsyncMongoClient

from service.api.prepared import Prepared
from service.app import create_app
from service.settings import Settings
from tests.api.conftest import PUSH, Api

PARTIAL = """mutation Sync($input: PushInput!){ sent: pushChanges(input:$input){ __typename
  results{ id: offlineId status __typename record{ recordId v: version crdtEpoch updatedBy outOfScope }
  conflict{ recordId deviceId repId offlineId createdAt resolvedAt }
  refusal{ kind recordType recordId offlineId deviceId repId createdAt resolvedAt note change } } } }"""
PULL_VARIABLES = """query($d: ID!, $s: String, $l: Int){ pull(deviceId:$d, since:$s, limit:$l){ cursor hasMore
  records{ recordType recordId version deleted fields crdtState crdtEpoch updatedAt updatedBy outOfScope } } }"""
PULL_LITERALS = 'query{ p: pull(deviceId:"dev1", limit: 2){ hasMore records{ __typename recordId version } } }'
NOT_PREPARED = 'query{pull(deviceId:"dev1"){records{recordId photos{attachmentId}}}}'  # photos: a resolver's I/O
QUERIES = (PUSH, PARTIAL, PULL_VARIABLES, PULL_LITERALS, NOT_PREPARED)
AT = "2026-11-20T09:00:00+08:00"
MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"), "<time>"),
]


def masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: masked(base64.b64decode(item).decode("latin-1") if key == "crdtState" and item else item)
            for key, item in value.items()
            if key != "cursor"
        }
    if isinstance(value, list):
        return [masked(item) for item in value]
    if isinstance(value, str):
        for pattern, mask in MASKS:
            value = pattern.sub(mask, value)
    return value


class Phone:
    """One device's generated changes: visits on a few outlets, outlet patches and Yjs edits."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.sent: list[dict[str, Any]] = []
        self.docs: dict[str, Doc] = {}
        self.count = 0

    def change(self) -> dict[str, Any]:
        self.count += 1
        pick = self.random.random()
        if self.sent and pick < 0.12:
            return self.random.choice(self.sent)  # a retry: DUPLICATE (or blocked again)
        if self.sent and pick < 0.17:
            return {**self.random.choice(self.sent), "recordId": f"v-other-{self.count}"}  # offlineId reused
        offline_id = f"c{self.count}"
        if pick < 0.55:
            change = {
                "offlineId": offline_id,
                "recordType": "VISIT",
                "recordId": f"v{self.random.randrange(6)}",
                "operation": self.random.choice(["UPSERT", "UPSERT", "UPSERT", "DELETE"]),
                "capturedAt": AT,
                "baseVersion": self.random.choice([None, None, 1, 2]),
                "fields": {"outletId": self.random.choice(["o1", "o2", "o2", "missing"]), "status": "PLANNED"},
            }
        elif pick < 0.8:
            change = {
                "offlineId": offline_id,
                "recordType": "OUTLET",
                "recordId": self.random.choice(["o1", "o2"]),
                "operation": "UPSERT",
                "capturedAt": AT,
                "fields": {"phone": f"03-{self.count}"} if self.random.random() < 0.8 else {"repIds": ["x"]},
                "latitude": 3.1,
                "longitude": 101.6,
            }
        else:
            outlet = self.random.choice(["o1", "o2"])
            doc = self.docs.setdefault(outlet, Doc(client_id=7000 + len(self.docs)))
            before = doc.get_state()
            doc.get("fields", type=Map)["contactName"] = f"Contact {self.count}"
            change = {
                "offlineId": offline_id,
                "recordType": "OUTLET",
                "recordId": outlet,
                "operation": "UPSERT",
                "capturedAt": AT,
                "crdtUpdate": base64.b64encode(doc.get_update(before)).decode(),
                "stateVector": base64.b64encode(doc.get_state()).decode(),
                "crdtEpoch": 0,
            }
        self.sent.append(change)
        return change


async def session(api: Api) -> list[Any]:
    """Every answer of one generated session, in order."""
    answers: list[Any] = []
    rep_id, rep_token = await api.user("Ali", "REP")
    device = await api.device(rep_token, "dev1")
    await api.write("OUTLET", "o1", {"name": "Kedai Ali", "latitude": 3.1, "longitude": 101.6, "repIds": [rep_id]})
    await api.write("OUTLET", "o2", {"name": "Kedai Siti", "latitude": 3.2, "longitude": 101.7, "repIds": [rep_id]})
    phone = Phone(seed=15)
    for push in range(30):
        changes = [phone.change() for _ in range(phone.random.choice([1, 1, 3, 8]))]
        query = PARTIAL if push % 3 == 2 else PUSH
        name = "input" if query is PARTIAL else "i"
        extra = {"queueDepth": push, "appVersion": "2.1"} if push % 4 == 0 else {}
        answers.append(await api.call(query, {name: {"deviceId": "dev1", "changes": changes, **extra}}, device))
        if push == 20:  # a manager fixes what was refused: the queue drains
            await api.write("OUTLET", "missing", {"name": "Kedai Baru", "repIds": [rep_id]})
    cursor = None
    for _ in range(4):
        page = await api.call(PULL_VARIABLES, {"d": "dev1", "s": cursor, "l": 3}, device)
        answers.append(page)
        cursor = page["data"]["pull"]["cursor"]
    answers.append(await api.call(PULL_VARIABLES, {"d": "dev1"}, device))
    answers.append(await api.call(PULL_LITERALS, None, device))
    answers.append(await api.call(NOT_PREPARED, None, device))
    bad = {**phone.sent[0], "offlineId": "bad"}
    for variables in (
        {"i": {"deviceId": "dev1", "changes": [{**bad, "crdtEpoch": -1}]}},  # the resolver's BAD_REQUEST
        {"i": {"deviceId": "dev1", "changes": [{**bad, "fields": [1, 2]}]}},
        {"i": {"deviceId": "dev1", "changes": [{**bad, "recordId": "x" * 300}]}},
        {"i": {"deviceId": "dev2", "changes": [bad]}},  # FORBIDDEN: another device
        {"i": {"deviceId": "dev1", "changes": bad}},  # one change, not a list: GraphQL's coercion
        {"i": {"deviceId": "dev1", "changes": [{**bad, "recordType": "SHOP"}]}},  # no such enum value
        {"i": {"deviceId": "dev1", "changes": [{**bad, "capturedAt": "yesterday"}]}},
        {"i": {"deviceId": "dev1", "changes": [{**bad, "baseVersion": 2**40}]}},
        {"i": {"deviceId": "dev1", "changes": [{**bad, "surprise": 1}]}},
        {"i": {"deviceId": "dev1"}},
        {},
    ):
        answers.append(await api.call(PUSH, variables, device))
    answers.append(await api.call(PULL_VARIABLES, {"d": "dev1", "s": "forged"}, device))
    answers.append(await api.call(PULL_VARIABLES, {"d": "dev1", "l": 0}, device))
    answers.append(await api.call(PUSH, {"i": {"deviceId": "dev1", "changes": []}}, None))  # UNAUTHENTICATED
    answers.append(await api.call("query{ refusals{ edges{ node{ kind code reason attempts } } } }"))
    return answers


@asynccontextmanager
async def app_api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    prepared = app.state.fieldsync["prepared"]
    for query in QUERIES if prepared else ():
        prepared.learn(query)  # each is valid: prepared from the first request on
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield Api(http)


async def test_prepared_operations_answer_as_graphql_execution_does(settings: Settings, monkeypatch):
    general_settings = dataclasses.replace(settings, database=f"{settings.database}_g", prepared_operations=False)
    answered = []
    execute = Prepared.execute

    async def counted(self: Prepared, context: Any, variables: dict[str, Any] | None) -> Any:
        answered.append(await execute(self, context, variables))
        return answered[-1]

    monkeypatch.setattr(Prepared, "execute", counted)
    async with app_api(settings) as api:
        prepared = await session(api)
    # pushes and pulls, and the resolvers' own errors; bad variables and photos went the general way
    assert sum(result is not None for result in answered) == 30 + 6 + 4 + 3
    async with app_api(general_settings) as api:
        general = await session(api)
    client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_uri)
    for database in (settings.database, general_settings.database):
        await client.drop_database(database)
    await client.close()
    assert len(prepared) == len(general)
    for index, (fast, slow) in enumerate(zip(prepared, general, strict=True)):
        assert masked(fast) == masked(slow), (index, _first_difference(masked(fast), masked(slow)))
    statuses = {r["status"] for a in prepared[:30] for r in (a["data"] or {}).get("pushChanges", {}).get("results", [])}
    assert {"APPLIED", "MERGED", "DUPLICATE", "REFUSED", "CONFLICT", "BLOCKED"} <= statuses, statuses


async def test_only_what_a_prepared_operation_covers_is_prepared(settings: Settings):
    app = create_app(settings)
    prepared = app.state.fieldsync["prepared"]
    for query in QUERIES:
        prepared.learn(query)
    assert [prepared.get(query, None) is not None for query in QUERIES] == [True, True, True, True, False]
    assert prepared.get(PARTIAL, "Sync") is not None and prepared.get(PARTIAL, "Other") is None
    for query in (
        "fragment R on ChangeResult{status} mutation($i: PushInput!){pushChanges(input:$i){results{...R}}}",
        "mutation($i: PushInput!){pushChanges(input:$i){results{status @include(if: true)}}}",
        "mutation($i: PushInput!){pushChanges(input:$i){syncId} me: pushChanges(input:$i){syncId}}",
        "query{me{id}}",
        'query($l: Int = 5){pull(deviceId:"d", limit:$l){cursor}}',
    ):
        prepared.learn(query)
        assert prepared.get(query, None) is None, query


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return next((_first_difference(a[k], b[k], f"{path}.{k}") for k in a if a[k] != b[k]), "")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next(
            (_first_difference(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), ""
        )
    return f"{path}: {a!r} != {b!r}"
