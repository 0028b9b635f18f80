"""Sync Health live: a dashboard watches a refusal appear and clear (seed 000), across instances too."""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import Server
from tests.e2e.graphql_ws import GraphQLWebSocket, next_payload

PUSH = "mutation($i: PushInput!){ pushChanges(input:$i){ results{ offlineId status blockedBy refusal{ id code } } } }"
REFUSALS = (
    "subscription{ refusalEvents{ type refusal{ id code reason status recordId related{ recordType recordId } } } }"
)
STATUS = "subscription($d: ID){ syncStatus(deviceId: $d){ device{ id queueDepth } status queueDepth counts } }"


def rep_device(server: Server, name: str, device_id: str) -> str:
    rep = server.data(f'mutation{{createUser(input:{{name:"{name}", role:REP}}){{token}}}}')["createUser"]["token"]
    return server.data(
        "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
        {"i": {"deviceId": device_id, "name": "Phone", "platform": "android"}},
        token=rep,
    )["registerDevice"]["token"]


def assign_outlet(server: Server, outlet_id: str, name: str, device: str) -> None:
    """A manager writes the outlet, assigned to the rep of ``device``."""
    rep_id = server.data("query{me{id}}", token=device)["me"]["id"]
    server.data(
        "mutation($i: WriteRecordInput!){writeRecord(input:$i){status}}",
        {"i": {"recordType": "OUTLET", "recordId": outlet_id, "fields": {"name": name, "repIds": [rep_id]}}},
    )


def queue() -> list[dict]:
    base = {"recordType": "VISIT", "operation": "UPSERT", "capturedAt": "2026-11-20T09:00:00+08:00"}
    return [
        {**base, "offlineId": "q1", "recordId": "v1", "fields": {"outletId": "kedai-ali", "status": "PLANNED"}},
        {**base, "offlineId": "q2", "recordId": "v2", "fields": {"outletId": "o-ok", "status": "PLANNED"}},
        {**base, "offlineId": "q3", "recordId": "v3", "fields": {"outletId": "o-ok", "status": "PLANNED"}},
    ]


async def subscribers(server: Server, count: int) -> None:
    """Wait until the server has registered `count` subscriptions (its metrics say so)."""
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(500):
            text = (await client.get(f"{server.url}/metrics")).text
            if f"fieldsync_subscribers {count}" in text:
                return
            await asyncio.sleep(0.01)
    raise TimeoutError(f"{count} subscriptions were not registered")


async def refusal_round_trip(publisher: Server, watcher: Server) -> None:
    """A refusal decided on `publisher` reaches a dashboard connected to `watcher`, and so does its clearing."""
    device = rep_device(publisher, "Ali", "dev1")
    assign_outlet(publisher, "o-ok", "OK", device)
    dashboard = await GraphQLWebSocket.open(watcher.url, "e2e-admin-token")
    try:
        refusals = await dashboard.subscribe(REFUSALS)
        statuses = await dashboard.subscribe(STATUS, {"d": "dev1"})
        await subscribers(watcher, 2)
        first = await asyncio.to_thread(
            publisher.data, PUSH, {"i": {"deviceId": "dev1", "changes": queue(), "queueDepth": 3}}, device
        )
        assert [r["status"] for r in first["pushChanges"]["results"]] == ["REFUSED", "BLOCKED", "BLOCKED"]
        created = (await next_payload(refusals))["refusalEvents"]
        assert created["type"] == "CREATED"
        assert created["refusal"]["code"] == "OUTLET_NOT_FOUND"
        assert created["refusal"]["related"] == {"recordType": "OUTLET", "recordId": "kedai-ali"}
        status = (await next_payload(statuses))["syncStatus"]
        assert (status["status"], status["queueDepth"]) == ("NEEDS_ATTENTION", 3)

        # The manager fixes the data the reason points at; the device's next sync clears the block.
        await asyncio.to_thread(assign_outlet, publisher, "kedai-ali", "Kedai Ali", device)
        second = await asyncio.to_thread(
            publisher.data, PUSH, {"i": {"deviceId": "dev1", "changes": queue(), "queueDepth": 0}}, device
        )
        assert [r["status"] for r in second["pushChanges"]["results"]] == ["APPLIED", "APPLIED", "APPLIED"]
        resolved = (await next_payload(refusals))["refusalEvents"]
        assert (resolved["type"], resolved["refusal"]["id"]) == ("RESOLVED", created["refusal"]["id"])
        assert resolved["refusal"]["status"] == "RESOLVED"
        status = (await next_payload(statuses))["syncStatus"]
        assert (status["status"], status["queueDepth"], status["counts"]) == ("HEALTHY", 0, {"APPLIED": 3})
    finally:
        await dashboard.close()


async def test_a_dashboard_watches_a_refusal_created_fixed_and_resolved(serve):
    server = serve("--memory")
    await refusal_round_trip(server, server)


async def test_events_reach_subscribers_connected_to_another_instance(serve, mongo_uri):
    shared = {"MONGODB_URI": mongo_uri, "FIELDSYNC_DATABASE": "e2e_fanout"}
    first, second = serve(**shared), serve(**shared)
    try:
        await refusal_round_trip(publisher=first, watcher=second)
    finally:
        from pymongo import MongoClient

        with MongoClient(mongo_uri) as client:
            client.drop_database("e2e_fanout")
