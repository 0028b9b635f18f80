"""The reference device client (fieldsync_client) against a real `fieldsync serve`."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldsync_client import Device, Offline, Transport, outlet_fields
from fieldsync_client.flaky import FlakyNetwork
from tests.e2e.conftest import ADMIN, Server

WRITE = "mutation($i: WriteRecordInput!){writeRecord(input:$i){status record{version fields} refusal{code reason}}}"
MYT = timezone(timedelta(hours=8))


def rep_with_devices(server: Server, *device_ids: str) -> tuple[str, dict[str, str]]:
    created = server.data('mutation{createUser(input:{name:"Aina", role:REP}){user{id} token}}')["createUser"]
    tokens = {
        device_id: server.data(
            "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
            {"i": {"deviceId": device_id, "name": device_id, "platform": "android"}},
            token=created["token"],
        )["registerDevice"]["token"]
        for device_id in device_ids
    }
    return created["user"]["id"], tokens


def write(server: Server, record_type: str, record_id: str, fields: dict[str, Any], base: int | None = None) -> dict:
    answer = server.data(
        WRITE, {"i": {"recordType": record_type, "recordId": record_id, "fields": fields, "baseVersion": base}}
    )
    assert answer["writeRecord"]["status"] != "REFUSED", answer
    return answer["writeRecord"]


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Callable[..., Device]]:
    opened: list[Device] = []

    def open_device(server: Server, token: str, device_id: str, **options: Any) -> Device:
        transport = Transport(server.url, token, sleep=lambda _: None)
        phone = Device(transport, device_id, tmp_path / f"{device_id}.json", clock=lambda: datetime.now(MYT), **options)
        opened.append(phone)
        return phone

    yield open_device
    for phone in opened:
        phone.close()


def test_a_field_day_through_the_reference_client(serve, device) -> None:
    server = serve("--memory")
    rep, tokens = rep_with_devices(server, "phone-a", "phone-b")
    outlet = str(uuid.uuid4())
    write(server, "OUTLET", outlet, {"name": "Kedai Ali", "latitude": 3.139, "longitude": 101.687})
    write(server, "PRODUCT", "p1", {"sku": "TEA-1", "name": "Teh", "unitPrice": 4.5, "active": True})
    planned = str(uuid.uuid4())
    write(server, "VISIT", planned, {"outletId": outlet, "repId": rep, "plannedAt": "2026-11-30T15:00:00+08:00",
                                     "status": "PLANNED"})  # fmt: skip
    prompts: list[dict] = []
    a = device(server, tokens["phone-a"], "phone-a", on_conflict=lambda c: prompts.append(c) or "OVERWRITE")
    b = device(server, tokens["phone-b"], "phone-b")
    for phone in (a, b):
        phone.sync()
        assert phone.view("OUTLET", outlet)["name"] == "Kedai Ali"
        assert set(phone.records("PRODUCT")) == {"p1"}

    # Offline: a visit with its check-in, an order and outlet edits on both phones at once.
    visit, order = str(uuid.uuid4()), str(uuid.uuid4())
    visit_fields = {"outletId": outlet, "repId": rep, "plannedAt": "2026-11-30T09:00:00+08:00", "status": "PLANNED"}
    a.save("VISIT", visit, visit_fields)
    a.save(
        "VISIT", visit, {**visit_fields, "status": "CHECKED_IN", "checkInLatitude": 3.1391, "checkInLongitude": 101.687}
    )
    a.save("ORDER", order, {"outletId": outlet, "visitId": visit, "repId": rep, "status": "SUBMITTED",
                            "lines": [{"productId": "p1", "quantity": 3, "unitPrice": 4.5}]})  # fmt: skip
    a.edit_outlet(outlet, {"phone": "+60 3 1234"}, add_tags=("halal",), append_notes="Open till 10. ")
    b.edit_outlet(outlet, {"contactName": "Ali"}, add_tags=("24h",), append_notes="Back door. ")

    # The queue lives in the device's file: a restarted app has it all.
    a = device(server, tokens["phone-a"], "phone-a", on_conflict=lambda c: prompts.append(c) or "OVERWRITE")
    assert [c["recordType"] for c in a.queue] == ["VISIT", "VISIT", "ORDER", "OUTLET"]
    stats = a.sync()
    assert stats.statuses == {"APPLIED": 3, "MERGED": 1} and not a.queue
    b.sync()
    a.sync()
    server_outlet = server.data("query($id: ID!){record(recordType: OUTLET, recordId: $id){fields}}", {"id": outlet})
    for phone in (a, b):
        assert outlet_fields(phone.docs[outlet]) == server_outlet["record"]["fields"]
    assert server_outlet["record"]["fields"]["tags"] == ["24h", "halal"]
    assert sorted(server_outlet["record"]["fields"]["notes"].split(". ")) == ["", "Back door", "Open till 10"]

    # A manager changes the visit while the phone edits it offline: the phone's prompt says OVERWRITE.
    current = a.records("VISIT")[visit]
    write(server, "VISIT", visit, {**current["fields"], "notes": "from the office"}, base=current["version"])
    a.save("VISIT", visit, {**current["fields"], "status": "COMPLETED", "completedAt": datetime.now(MYT).isoformat()})
    stats = a.sync()
    assert stats.conflicts == 1 and prompts[0]["changedFields"] and not a.queue
    assert a.records("VISIT")[visit]["fields"]["status"] == "COMPLETED"

    # A check-in far away is refused (FIX_DATA) and blocks the queue until a manager dismisses it;
    # an order with quantity 0 is refused ACKNOWLEDGE and dropped once acknowledged.
    far, later = str(uuid.uuid4()), str(uuid.uuid4())
    a.save("VISIT", far, {**visit_fields, "status": "CHECKED_IN", "checkInLatitude": 3.5, "checkInLongitude": 101.0})
    a.save("ORDER", later, {"outletId": outlet, "repId": rep, "status": "DRAFT",
                            "lines": [{"productId": "p1", "quantity": 0, "unitPrice": 4.5}]})  # fmt: skip
    stats = a.sync()
    assert stats.statuses == {"REFUSED": 1, "BLOCKED": 1} and len(a.queue) == 2
    refusal = server.data("{refusals(filter:{status:[OPEN]}){edges{node{id code offlineId}}}}")["refusals"]["edges"]
    assert [e["node"]["code"] for e in refusal] == ["OUTSIDE_GEOFENCE"]
    server.data(
        'mutation($id: ID!){dismissRefusal(id: $id, note: "wrong outlet"){status}}', {"id": refusal[0]["node"]["id"]}
    )
    stats = a.sync()
    assert stats.statuses == {"REFUSED": 2} and not a.queue
    assert sorted(a.state["dropped"].values()) == ["ACKNOWLEDGED", "DISMISSED"]

    # The planned visit reassigned to another rep: the next pull removes it from both phones.
    other = server.data('mutation{createUser(input:{name:"Badrul", role:REP}){user{id}}}')["createUser"]["user"]["id"]
    held = a.records("VISIT")[planned]
    write(server, "VISIT", planned, {**held["fields"], "repId": other}, base=held["version"])
    for phone in (a, b):
        assert phone.sync().removed == 1
        assert phone.view("VISIT", planned) is None and planned not in phone.records("VISIT")


def test_lost_answers_and_duplicate_sends_apply_each_change_once(serve, tmp_path: Path) -> None:
    server = serve("--memory")
    rep, tokens = rep_with_devices(server, "phone-c")
    outlet = str(uuid.uuid4())
    write(server, "OUTLET", outlet, {"name": "Kedai Siti", "latitude": 3.0, "longitude": 101.0})
    write(server, "WORK_ORDER", "wo-1", {"outletId": outlet, "repId": rep, "description": "Fix the chiller",
                                         "status": "OPEN", "resourceHours": []})  # fmt: skip
    network = FlakyNetwork(random.Random(7), lose_request=0.1, lose_answer=0.2, send_twice=0.2)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    http = httpx.Client(transport=network)
    transport = Transport(server.url, tokens["phone-c"], http=http, sleep=sleep, backoff_base=0.05, max_attempts=20)
    phone = Device(transport, "phone-c", tmp_path / "phone-c.json", clock=lambda: datetime.now(MYT))
    try:
        phone.sync()
        hours: list[dict] = []
        for hour in range(1, 5):  # an hour logged and synced at a time, faster than the rate limit allows
            hours.append({"hours": 1, "loggedAt": datetime.now(MYT).isoformat()})
            phone.save("WORK_ORDER", "wo-1", {**phone.view("WORK_ORDER", "wo-1"), "status": "IN_PROGRESS",
                                              "resourceHours": list(hours)})  # fmt: skip
            phone.edit_outlet(outlet, append_notes=f"hour {hour}. ")
            phone.sync()
    finally:
        phone.close()
    assert not phone.queue and network.faults["lost answers"] and network.faults["duplicate sends"]
    events = server.data(
        '{syncHistory(filter:{deviceId:"phone-c", actions:[APPLIED, MERGED, UNCHANGED, CONFLICT]}, first: 500)'
        "{edges{node{offlineId action}}}}"
    )["syncHistory"]["edges"]
    decided = [(e["node"]["offlineId"], e["node"]["action"]) for e in events]
    assert sorted(decided) == sorted(phone.state["decided"].items())  # each decided change exactly once
    assert phone.records("WORK_ORDER")["wo-1"]["fields"]["resourceHours"] == hours
    server_notes = server.data("query($id: ID!){record(recordType: OUTLET, recordId: $id){fields}}", {"id": outlet})
    assert outlet_fields(phone.docs[outlet]) == server_notes["record"]["fields"]


def test_photos_taken_offline_reach_the_server_over_tus_through_a_patchy_network(serve, tmp_path: Path) -> None:
    server = serve("--memory")
    rep, tokens = rep_with_devices(server, "phone-p")
    outlet = str(uuid.uuid4())
    write(server, "OUTLET", outlet, {"name": "Kedai Foto", "latitude": 3.0, "longitude": 101.0, "repIds": [rep]})
    network = FlakyNetwork(random.Random(3), lose_request=0.1, lose_answer=0.2, send_twice=0.1)
    http = httpx.Client(transport=network)
    transport = Transport(server.url, tokens["phone-p"], http=http, backoff_base=0.05, max_attempts=20)
    phone = Device(transport, "phone-p", tmp_path / "phone-p.json", clock=lambda: datetime.now(MYT))
    shelf = b"\xff\xd8\xff\xe0" + random.Random(1).randbytes(700_000)  # a JPEG's first bytes: three PATCHes
    try:
        phone.sync()
        visit = str(uuid.uuid4())
        photos = [phone.take_photo(shelf, latitude=3.0, longitude=101.0), phone.take_photo(shelf)]  # twice: one content
        not_a_photo = phone.take_photo(b"just text, no picture")
        now = datetime.now(MYT).isoformat()
        phone.save("VISIT", visit, {"outletId": outlet, "repId": rep, "status": "CHECKED_IN", "plannedAt": now,
                                    "checkInAt": now, "checkInLatitude": 3.0, "checkInLongitude": 101.0,
                                    "photos": photos})  # fmt: skip
        stats = phone.sync()
    finally:
        phone.close()
    assert stats.photos_sent == 2 and stats.photos_refused == {not_a_photo["attachmentId"]: 415}
    assert not phone.state["photos"] and not list((tmp_path / "phone-p-photos").iterdir())
    assert network.faults["lost answers"]
    record = server.data(
        "query($id: ID!){record(recordType: VISIT, recordId: $id){photos{attachmentId status size}}}", {"id": visit}
    )["record"]
    assert [(p["attachmentId"], p["status"], p["size"]) for p in record["photos"]] == [
        (photo["attachmentId"], "AVAILABLE", len(shelf)) for photo in photos
    ]
    stored = httpx.get(f"{server.url}/files/{photos[1]['attachmentId']}", headers={"Authorization": f"Bearer {ADMIN}"})
    assert stored.content == shelf


def test_a_rate_limited_request_waits_retry_after_then_gives_up_as_offline(serve) -> None:
    server = serve("--memory", FIELDSYNC_RATE_LIMIT_PER_MINUTE="6", FIELDSYNC_RATE_LIMIT_BURST="2")
    waits: list[float] = []
    transport = Transport(server.url, ADMIN, sleep=waits.append, max_attempts=3)
    try:
        for _ in range(2):  # the burst
            assert transport.execute("{me{id}}")["me"]["id"] == "admin"
        with pytest.raises(Offline):
            transport.execute("{me{id}}")
    finally:
        transport.close()
    assert len(waits) == 3 and all(wait >= 5 for wait in waits), waits  # 6 a minute: Retry-After is several seconds


def test_phones_editing_one_outlet_through_many_compactions_end_equal(serve, device) -> None:
    """Two phones and a manager edit one outlet hundreds of times; the server compacts it again and
    again (a 384-byte threshold). A phone that was offline meanwhile still gets its edits in, starts
    over on the new epoch, and both phones end equal to the server, whose state stays small."""
    server = serve("--memory", FIELDSYNC_CRDT_COMPACT_BYTES="384")
    rep, tokens = rep_with_devices(server, "phone-a", "phone-b")
    outlet = str(uuid.uuid4())
    write(server, "OUTLET", outlet, {"name": "Kedai Ali", "city": "Ipoh", "repIds": [rep]})
    a, b = device(server, tokens["phone-a"], "phone-a"), device(server, tokens["phone-b"], "phone-b")
    for phone in (a, b):
        phone.sync()
    b.edit_outlet(outlet, {"contactName": "Ali"}, add_tags=("24h",), append_notes="Back door. ")  # offline
    rng = random.Random(5)
    for round_ in range(90):
        a.edit_outlet(outlet, {rng.choice(("name", "phone", "channel")): f"a{round_}"})
        write(server, "OUTLET", outlet, {rng.choice(("city", "phone")): f"hq{round_}"})
        assert set(a.sync().statuses) <= {"MERGED", "UNCHANGED"}  # UNCHANGED: the manager wrote the same field later
    query = "query($id: ID!){record(recordType: OUTLET, recordId: $id){fields crdtState crdtEpoch}}"
    before = server.data(query, {"id": outlet})["record"]
    assert before["crdtEpoch"] >= 2
    b.sync()  # its edits were made on epoch 0
    a.sync()
    after = server.data(query, {"id": outlet})["record"]
    assert (after["fields"]["contactName"], after["fields"]["tags"], after["fields"]["notes"]) == (
        "Ali",
        ["24h"],
        "Back door. ",
    )
    for phone in (a, b):
        assert outlet_fields(phone.docs[outlet]) == after["fields"]
        assert phone.state["outletEpochs"][outlet] == after["crdtEpoch"]
    assert len(after["crdtState"]) < 4 * 384  # base64 of a state that holds content, not 180 edits
