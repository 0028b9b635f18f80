"""A device with broken geo-stamps and a phantom order: flagged, in Sync Health, live, in the day's report."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import httpx

from tests.e2e.conftest import ADMIN, Server
from tests.e2e.graphql_ws import GraphQLWebSocket, next_payload
from tests.e2e.test_live_refusals import assign_outlet, rep_device, subscribers

PUSH = "mutation($i: PushInput!){ pushChanges(input:$i){ results{ offlineId status } } }"
EVENTS = "subscription{ anomalyEvents{ type at anomaly{ id code severity status reason recordId note rep{ name } } } }"
HEALTH = "query($r: ID){ syncHealth(repId: $r){ reps{ status openAnomalies{ code severity reason } } } }"
REPORT = (
    "query($d: Date!){ syncReport(date: $d){ actions{ action count } anomalies{ code count }"
    " reps{ repId anomalies{ code count } } } }"
)
KL = 3.139, 101.6869
MALAYSIA = timezone(timedelta(hours=8))


def captured(minutes_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).astimezone(MALAYSIA).isoformat()


def stamped(offline_id: str, record_type: str, record_id: str, fields: dict, minutes_ago: float, at: tuple) -> dict:
    return {
        "offlineId": offline_id,
        "recordType": record_type,
        "recordId": record_id,
        "operation": "UPSERT",
        "capturedAt": captured(minutes_ago),
        "fields": fields,
        "latitude": at[0],
        "longitude": at[1],
    }


def field_day() -> list[dict]:
    lines = [{"productId": "p1", "quantity": 6}, {"productId": "p2", "quantity": 2}]
    order = {"outletId": "o1", "status": "SUBMITTED", "lines": lines}
    return [
        stamped("c1", "ORDER", "or1", order, 40, KL),
        stamped("c2", "ORDER", "or2", order, 38, (KL[0] + 0.0002, KL[1])),  # the same order again: a phantom
        stamped("c3", "VISIT", "v1", {"outletId": "o2", "status": "PLANNED"}, 30, (0.0, 0.0)),  # no fix
        stamped("c4", "VISIT", "v2", {"outletId": "o2", "status": "PLANNED"}, 25, (KL[0] + 2.7, KL[1])),  # 300 km off
    ]


def seed(server: Server, device: str) -> str:
    assign_outlet(server, "o1", "Kedai Ali", device)
    assign_outlet(server, "o2", "Kedai Siti", device)
    for product in ("p1", "p2"):
        server.data(
            "mutation($i: WriteRecordInput!){writeRecord(input:$i){status}}",
            {
                "i": {
                    "recordType": "PRODUCT",
                    "recordId": product,
                    "fields": {"sku": product, "name": product, "unitPrice": 2},
                }
            },
        )
    return server.data("query{me{id}}", token=device)["me"]["id"]


async def test_broken_geo_stamps_and_a_phantom_order_are_flagged_shown_streamed_and_counted(serve):
    server = serve("--memory")
    device = rep_device(server, "Ali", "dev1")
    rep_id = seed(server, device)
    dashboard = await GraphQLWebSocket.open(server.url, ADMIN)
    try:
        events = await dashboard.subscribe(EVENTS)
        await subscribers(server, 1)
        pushed = await asyncio.to_thread(server.data, PUSH, {"i": {"deviceId": "dev1", "changes": field_day()}}, device)
        assert [r["status"] for r in pushed["pushChanges"]["results"]] == ["APPLIED"] * 4  # flags never block
        flagged = [(await next_payload(events))["anomalyEvents"] for _ in range(3)]
        assert sorted((e["type"], e["anomaly"]["code"], e["anomaly"]["recordId"]) for e in flagged) == [
            ("FLAGGED", "CONTENT_DUPLICATE", "or2"),
            ("FLAGGED", "GEO_JUMP", "v2"),
            ("FLAGGED", "GEO_NULL_ISLAND", "v1"),
        ]
        assert {e["anomaly"]["rep"]["name"] for e in flagged} == {"Ali"}
        phantom = next(e["anomaly"] for e in flagged if e["anomaly"]["code"] == "CONTENT_DUPLICATE")
        assert phantom["reason"].startswith("Order or2 repeats order or1 line for line (outlet o1: 6 x p1, 2 x p2)")

        # Sync Health: the rep needs attention while a HIGH flag is open.
        [rep] = server.data(HEALTH, {"r": rep_id})["syncHealth"]["reps"]
        assert rep["status"] == "NEEDS_ATTENTION"
        assert sorted((a["code"], a["severity"]) for a in rep["openAnomalies"]) == [
            ("CONTENT_DUPLICATE", "HIGH"),
            ("GEO_JUMP", "HIGH"),
            ("GEO_NULL_ISLAND", "MEDIUM"),
        ]

        # The day's report counts them, in total and for the rep.
        report = server.data(REPORT, {"d": datetime.now(UTC).date().isoformat()})["syncReport"]
        assert {"action": "ANOMALY_FLAGGED", "count": 3} in report["actions"]
        by_code = {"CONTENT_DUPLICATE": 1, "GEO_JUMP": 1, "GEO_NULL_ISLAND": 1}
        assert {a["code"]: a["count"] for a in report["anomalies"]} == by_code
        [mine] = [r for r in report["reps"] if r["repId"] == rep_id]
        assert {a["code"]: a["count"] for a in mine["anomalies"]} == by_code

        # A manager confirms the phantom and dismisses the rest with a note; the rep is healthy again.
        for anomaly in flagged:
            verdict = "CONFIRMED" if anomaly["anomaly"]["code"] == "CONTENT_DUPLICATE" else "DISMISSED"
            server.data(
                'mutation($i: ID!, $s: AnomalyStatus!){ reviewAnomaly(id: $i, status: $s, note: "checked"){ status } }',
                {"i": anomaly["anomaly"]["id"], "s": verdict},
            )
        reviewed = [(await next_payload(events))["anomalyEvents"] for _ in range(3)]
        assert sorted(e["type"] for e in reviewed) == ["CONFIRMED", "DISMISSED", "DISMISSED"]
        assert {e["anomaly"]["note"] for e in reviewed} == {"checked"}
        assert server.data(HEALTH, {"r": rep_id})["syncHealth"]["reps"][0]["openAnomalies"] == []
        mine_only = server.data("query{anomalies{totalCount edges{node{code status}}}}", token=device)["anomalies"]
        assert mine_only["totalCount"] == 3

        # The history export carries the flags and the verdicts.
        export = httpx.get(
            f"{server.url}/export/history.ndjson",
            params={"action": ["ANOMALY_FLAGGED", "ANOMALY_CONFIRMED", "ANOMALY_DISMISSED"]},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert export.status_code == 200
        assert export.text.count('"ANOMALY_FLAGGED"') == 3 and export.text.count('"ANOMALY_DISMISSED"') == 2
    finally:
        await dashboard.close()
