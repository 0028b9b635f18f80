"""Two `fieldsync serve` processes on one store: devices on both merge into the same outlets at once.

Both instances must then read identical outlets, equal to the merge rule's answer: every write here
is concurrent with the other devices' (patches made on nothing, Yjs updates made on the outlet as
created), a Yjs device's later edit replaces its own earlier one, and of the rest the latest capture
wins, then the greater device id.
"""

from __future__ import annotations

import base64
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.crdt.devices import Device
from tests.e2e.conftest import Server
from tests.e2e.test_yjs_interop import device_token

OUTLETS = ("o1", "o2")
FIELDS = ("name", "city", "phone")
PUSH = "mutation($i: PushInput!){pushChanges(input:$i){results{status refusal{code reason} record{crdtState}}}}"
READ = "query($id: ID!){record(recordType: OUTLET, recordId: $id){fields crdtState}}"


def push(server: Server, token: str, device_id: str, change: dict[str, Any]) -> dict[str, Any]:
    change = {"offlineId": str(uuid.uuid4()), "recordType": "OUTLET", "operation": "UPSERT", **change}
    data = server.data(PUSH, {"i": {"deviceId": device_id, "changes": [change]}}, token=token)
    return data["pushChanges"]["results"][0]


def test_two_instances_merging_the_same_outlets_agree_on_the_rules_answer(serve, mongo_uri: str) -> None:
    database = f"two_{uuid.uuid4().hex[:10]}"
    first = serve(MONGODB_URI=mongo_uri, FIELDSYNC_DATABASE=database)
    second = serve(MONGODB_URI=mongo_uri, FIELDSYNC_DATABASE=database)
    rep = first.data('mutation{createUser(input:{name:"Siti", role:REP}){token}}')["createUser"]["token"]
    devices = [(f"dev-{n}", device_token(first, rep, f"dev-{n}")) for n in range(4)]
    t0 = datetime.now(UTC) - timedelta(hours=1)
    states = {}
    for outlet in OUTLETS:
        created = push(
            first,
            devices[0][1],
            devices[0][0],
            {"recordId": outlet, "capturedAt": t0.isoformat(), "fields": {"active": True}},
        )
        states[outlet] = base64.b64decode(created["record"]["crdtState"])

    rng = random.Random(20)
    seconds = iter(rng.sample(range(60, 3000), 200))  # distinct capture times: no ties to reason about
    expected: dict[tuple[str, str], tuple[tuple[int, str, str], str]] = {}
    queues: list[tuple[Server, str, str, list[dict[str, Any]]]] = []
    for index, (device_id, token) in enumerate(devices):
        server = (first, second)[index % 2]
        queue, last = [], {}
        yjs = {outlet: Device(rng.getrandbits(32)) for outlet in OUTLETS} if index % 2 else None
        for outlet in OUTLETS:
            if yjs:
                yjs[outlet].receive(states[outlet])
        for _ in range(12):
            outlet, field = rng.choice(OUTLETS), rng.choice(FIELDS)
            value, at = f"{device_id} {field}", t0 + timedelta(seconds=next(seconds))
            change: dict[str, Any] = {"recordId": outlet, "capturedAt": at.isoformat()}
            if yjs:
                change["crdtUpdate"] = base64.b64encode(yjs[outlet].set(**{field: value})).decode()
                last[(outlet, field)] = (int(at.timestamp() * 1000), device_id, value)  # its own later edit replaces
            else:
                change["fields"] = {field: value}
                candidate = (int(at.timestamp() * 1000), device_id, value)
                expected[(outlet, field)] = max(expected.get((outlet, field), candidate), candidate)  # type: ignore[arg-type]
            queue.append(change)
        for key, candidate in last.items():
            expected[key] = max(expected.get(key, candidate), candidate)  # type: ignore[arg-type]
        queues.append((server, device_id, token, queue))

    def run(queue: tuple[Server, str, str, list[dict[str, Any]]]) -> list[str]:
        server, device_id, token, changes = queue
        return [str(push(server, token, device_id, change)) for change in changes]

    with ThreadPoolExecutor(len(queues)) as pool:
        for statuses in pool.map(run, queues):
            assert all("MERGED" in s or "UNCHANGED" in s for s in statuses), statuses

    for outlet in OUTLETS:
        seen = [server.data(READ, {"id": outlet})["record"] for server in (first, second)]
        assert seen[0] == seen[1]
        for field in FIELDS:
            if (outlet, field) in expected:
                assert seen[0]["fields"][field] == expected[(outlet, field)][2], (outlet, field)
