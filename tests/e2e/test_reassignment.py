"""Seed 001 (FieldKo): a manager reassigns a visit while the original rep has it offline and completes it.

Against a real `fieldsync serve`: rep A's completion is refused RECORD_REASSIGNED naming rep B, the
rest of rep A's queue drains, rep B's pull carries the visit, rep A's pull removes it, Sync Health
shows the refusal with the completion rep A sent, and the manager applies it.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Server

PUSH = """mutation($i: PushInput!){ pushChanges(input:$i){ results{
  offlineId status record{ recordId version } refusal{ id code reason action status change } } } }"""
PULL = """query($d: ID!, $s: String){ pull(deviceId:$d, since:$s){ cursor hasMore
  records{ recordType recordId version fields outOfScope } } }"""
WRITE = """mutation($i: WriteRecordInput!){ writeRecord(input:$i){
  status record{ version fields } refusal{ code reason } } }"""
AT = "2026-11-20T10:15:00+08:00"
PLANNED = {"outletId": "o1", "status": "PLANNED", "plannedAt": "2026-11-20T10:00:00+08:00"}


def rep(server: Server, name: str, device_id: str) -> tuple[str, str]:
    created = server.data(
        "mutation($i: CreateUserInput!){createUser(input:$i){user{id} token}}", {"i": {"name": name, "role": "REP"}}
    )["createUser"]
    device = server.data(
        "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
        {"i": {"deviceId": device_id, "name": "Phone", "platform": "android", "appVersion": "3.2"}},
        created["token"],
    )["registerDevice"]["token"]
    return created["user"]["id"], device


def write(server: Server, record_type: str, record_id: str, fields: dict[str, Any], base: int | None) -> dict:
    return server.data(
        WRITE, {"i": {"recordType": record_type, "recordId": record_id, "fields": fields, "baseVersion": base}}
    )["writeRecord"]


def pull(server: Server, token: str, device_id: str, cursor: str | None) -> tuple[list[dict], str]:
    records: list[dict] = []
    while True:
        page = server.data(PULL, {"d": device_id, "s": cursor}, token)["pull"]
        records += page["records"]
        cursor = page["cursor"]
        if not page["hasMore"]:
            return records, cursor


def visit_change(offline_id: str, record_id: str, base: int | None, **fields: Any) -> dict:
    return {
        "offlineId": offline_id,
        "recordType": "VISIT",
        "recordId": record_id,
        "operation": "UPSERT",
        "baseVersion": base,
        "capturedAt": AT,
        "fields": {**PLANNED, **fields},
    }


def test_a_visit_reassigned_while_its_rep_completed_it_offline(serve):
    server = serve("--memory")
    rep_a, phone_a = rep(server, "Aisyah", "phone-a")
    rep_b, phone_b = rep(server, "Budi", "phone-b")
    outlet = write(
        server,
        "OUTLET",
        "o1",
        {"name": "Kedai Ali", "latitude": 3.139, "longitude": 101.687},
        None,
    )
    assert outlet["status"] == "MERGED", outlet
    for visit in ("v0", "v1"):  # v0 stays rep A's (and keeps the outlet in its scope)
        created = write(server, "VISIT", visit, {**PLANNED, "repId": rep_a}, None)
        assert created["status"] == "APPLIED", created

    held_a, cursor_a = pull(server, phone_a, "phone-a", None)
    assert ("VISIT", "v1") in {(r["recordType"], r["recordId"]) for r in held_a}
    _, cursor_b = pull(server, phone_b, "phone-b", None)

    # Offline, rep A checks in and completes v1, then plans a follow-up; meanwhile the manager reassigns v1.
    queue = [
        visit_change("a1", "v1", 1, status="CHECKED_IN", checkInAt=AT, checkInLatitude=3.139, checkInLongitude=101.687),
        visit_change(
            "a2",
            "v1",
            1,
            status="COMPLETED",
            checkInAt=AT,
            checkInLatitude=3.139,
            checkInLongitude=101.687,
            completedAt="2026-11-20T10:40:00+08:00",
            notes="Shelf restocked",
        ),
        visit_change("a3", "v2", None),
    ]
    assert write(server, "VISIT", "v1", {**PLANNED, "repId": rep_b}, 1)["status"] == "APPLIED"

    results = server.data(PUSH, {"i": {"deviceId": "phone-a", "changes": queue, "queueDepth": 0}}, phone_a)
    answers = results["pushChanges"]["results"]
    assert [a["status"] for a in answers] == ["REFUSED", "REFUSED", "APPLIED"]  # the queue behind drains
    completion = answers[1]["refusal"]
    assert (completion["code"], completion["action"]) == ("RECORD_REASSIGNED", "ACKNOWLEDGE")
    assert f"Budi ({rep_b})" in completion["reason"]
    assert answers[1]["record"] is None

    theirs, _ = pull(server, phone_b, "phone-b", cursor_b)
    assert [(r["recordId"], r["fields"]["repId"], r["outOfScope"]) for r in theirs if r["recordType"] == "VISIT"] == [
        ("v1", rep_b, False)
    ]
    mine, _ = pull(server, phone_a, "phone-a", cursor_a)
    by_id = {r["recordId"]: r for r in mine if r["recordType"] == "VISIT"}
    assert by_id["v1"]["outOfScope"] is True and by_id["v1"]["fields"] is None
    assert by_id["v2"]["outOfScope"] is False

    health = server.data("query($r: ID){syncHealth(repId:$r){reps{openRefusals{id code change}}}}", {"r": rep_a})[
        "syncHealth"
    ]["reps"][0]
    sent = {r["id"]: r["change"] for r in health["openRefusals"] if r["code"] == "RECORD_REASSIGNED"}[completion["id"]]
    assert sent["fields"]["status"] == "COMPLETED" and sent["fields"]["notes"] == "Shelf restocked"

    # The manager applies what rep A sent, keeping rep B as the assignee.
    applied = write(server, "VISIT", "v1", {**sent["fields"], "repId": rep_b}, 2)
    assert applied["status"] == "APPLIED" and applied["record"]["fields"]["status"] == "COMPLETED"
    theirs, _ = pull(server, phone_b, "phone-b", cursor_b)
    assert [r["fields"]["status"] for r in theirs if r["recordId"] == "v1"] == ["COMPLETED"]
