"""Every query shape a sync sends is answered from an index on the embedded store, both engines.

A day of sync (writes, pushes with a refusal and a conflict, initial and delta pulls,
history pages, the event follower's reads) and of photos (tus uploads into GridFS, one
stored once, one abandoned, read back) runs against the embedded server while a command
listener records each ``find`` (and each ``delete`` of the photo channel); each is then
explained, and the SQLite plan must search an index: no collection scan, no sort of what
it read. On the memory engine (``--memory``) the explanation names where each read takes its
candidates (``embedded_memory_ranges``): an index, never a scan of the collection. A change
that brings a scan back fails here. ``docs/query-shapes.md`` lists the shapes and indexes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import monitoring

from service.app import build_services, declared_indexes
from service.auth.roles import Principal, Role
from service.domain.record_types import RecordType
from service.services import Services
from service.settings import Settings
from service.store import history, sequence
from service.store.database import Store, connect, ensure_indexes
from service.store.embedded import EmbeddedStore, start_embedded_store
from service.uploads import storage
from tests.factories import T0, change

VISIT, OUTLET, PRODUCT = RecordType.VISIT, RecordType.OUTLET, RecordType.PRODUCT
HOT_COLLECTIONS = {"records", "receipts", "refusals", "conflicts", "history", "counters", "scope_exits"}
UPLOAD_COLLECTIONS = {storage.COLLECTION, storage.CONTENTS, f"{storage.BUCKET}.files", f"{storage.BUCKET}.chunks"}


class Finds(monitoring.CommandListener):
    """Each ``find`` on the hot collections and each ``find`` and ``delete`` on the upload ones."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name, command = event.command_name, event.command
        if name == "find" and command["find"] in HOT_COLLECTIONS | UPLOAD_COLLECTIONS:
            keep = ("find", "filter", "sort", "limit", "projection")
            self.commands.append({key: command[key] for key in keep if key in command})
        elif name == "delete" and command["delete"] in UPLOAD_COLLECTIONS:
            self.commands.append({"delete": command["delete"], "deletes": command["deletes"]})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    embedded = start_embedded_store(Path(tmp_path_factory.mktemp("shapes")))
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
async def traced(sqlite_store: EmbeddedStore) -> AsyncIterator[tuple[Services, Store, Finds]]:
    async with tracing(sqlite_store) as traced:
        yield traced


@pytest.fixture
async def memory_traced(memory_store: EmbeddedStore) -> AsyncIterator[tuple[Services, Store, Finds]]:
    async with tracing(memory_store) as traced:
        yield traced


@asynccontextmanager
async def tracing(embedded: EmbeddedStore) -> AsyncIterator[tuple[Services, Store, Finds]]:
    finds = Finds()
    settings = Settings(mongodb_uri=embedded.uri, database=f"shapes_{uuid.uuid4().hex[:8]}")
    store = connect(embedded.uri, settings.database, embedded=True, event_listeners=[finds])
    await ensure_indexes(store, declared_indexes(settings))
    try:
        yield build_services(settings, store), store, finds
    finally:
        await store.client.drop_database(settings.database)
        await store.close()


def shape(value: Any) -> Any:
    """A command with its values replaced by their types: one entry per query shape."""
    if isinstance(value, dict):
        return (
            {key: shape(item) for key, item in value.items()}
            if "find" not in value
            else {
                "find": value["find"],
                **{key: shape(item) for key, item in value.items() if key != "find"},
            }
        )
    if isinstance(value, list):
        return [shape(item) for item in value[:1]] + (["..."] if len(value) > 1 else [])
    return type(value).__name__


def scans(plan_lines: list[str]) -> list[str]:
    """The lines of a SQLite query plan that read a whole collection or sort what they read (a projection's
    ``json_each`` reads the members of one document: ``embedded_index_plans``)."""
    return [
        line
        for line in plan_lines
        if (line.startswith("SCAN ") and not line.startswith("SCAN json_each VIRTUAL TABLE"))
        or ("TEMP B-TREE" in line and not line.startswith("UNION"))
        or re.search(r"\(db_name=\? AND coll_name=\?\)$", line)
    ]


async def plan_of(store: Store, command: dict[str, Any]) -> list[str]:
    explained = await store.db.command("explain", command, verbosity="queryPlanner")
    assert "engine_details" in explained.get("details", {}), explained
    return list(explained["details"]["engine_details"])


async def memory_candidates(store: Store, command: dict[str, Any]) -> dict[str, Any]:
    """Where the memory engine takes a read's candidates: each ``$or`` branch's index, and
    whether it stops at the limit."""
    explained = await store.db.command("explain", command, verbosity="queryPlanner")
    return dict(explained["details"]["candidates"])


async def a_day_of_sync(services: Services, store: Store) -> None:
    sync = services.sync
    for n in range(3):
        await sync.write_record(OUTLET, f"o{n}", {"name": f"Outlet {n}"}, None, user_id="hq")
    await sync.write_record(PRODUCT, "p1", {"sku": "A", "name": "A", "unitPrice": 1}, None, user_id="hq")
    visits = [change(VISIT, f"v{n}", {"outletId": f"o{n % 3}", "status": "PLANNED"}) for n in range(6)]
    await sync.push(visits, device_id="d1", rep_id="rep1")
    await sync.push([change(VISIT, "bad", {"outletId": "nowhere", "status": "PLANNED"})], device_id="d1", rep_id="rep1")
    edit = {"outletId": "o0", "status": "DONE"}
    await sync.push([change(VISIT, "v0", edit, base_version=1, offline_id="e1")], device_id="d2", rep_id="rep1")
    await sync.push([change(VISIT, "v0", edit, base_version=1, offline_id="e2")], device_id="d1", rep_id="rep1")
    await sync.push(visits[:2], device_id="d1", rep_id="rep1")  # duplicates
    page, cursor = await sync.pull("rep1", None, 3)
    while page.has_more:
        page, cursor = await sync.pull("rep1", cursor, 3)
    await sync.push([change(VISIT, "v9", {"outletId": "o1", "status": "PLANNED"})], device_id="d1", rep_id="rep1")
    await sync.pull("rep1", cursor, 50)
    for store_filter in (
        history.HistoryFilter(),
        history.HistoryFilter(rep_id="rep1"),
        history.HistoryFilter(device_id="d1", actions=("APPLIED", "REFUSED")),
        history.HistoryFilter(record_type=VISIT, record_id="v0"),
        history.HistoryFilter(actions=("APPLIED",), since=T0 - timedelta(days=1)),
    ):
        await history.page(store, store_filter, 2, 2)
    await history.after(store, await sequence.current(store), 1000)


async def body(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def a_day_of_photos(services: Services, store: Store) -> None:
    """Photos sent in two PATCHes, one sent twice (stored once), one abandoned, all read back."""
    phone = Principal("rep1", Role.REP, "t1", "d1")
    photo = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 2_000  # 3 chunks
    channel = services.uploads
    for attachment in ("shelf-1", "shelf-2"):
        upload = await channel.create(phone, len(photo), {"attachmentId": attachment})
        upload = await channel.append(phone, upload.id, 0, body(photo[:300_000]), None)
        upload = await channel.append(phone, upload.id, upload.offset, body(photo[300_000:]), None)
        assert upload.complete
    abandoned = await channel.create(phone, len(photo), {"attachmentId": "shelf-3"})
    await channel.append(phone, abandoned.id, 0, body(photo[:1000]), None)
    await channel.terminate(phone, abandoned.id)
    stored = await channel.readable(phone, "shelf-1")
    assert b"".join([piece async for piece in storage.read_files(store, stored.content_files)]) == photo


async def test_every_query_a_sync_sends_searches_an_index(traced: tuple[Services, Store, Finds]):
    services, store, finds = traced
    await a_day_of_sync(services, store)
    await a_day_of_photos(services, store)
    shapes = {repr(shape(command)): command for command in finds.commands}
    collections = {command.get("find") or command["delete"] for command in shapes.values()}
    assert collections >= UPLOAD_COLLECTIONS
    assert {"records", "receipts", "refusals", "conflicts", "history", "counters"} <= collections
    scanning = {key: scans(await plan_of(store, command)) for key, command in shapes.items()}
    assert {key: lines for key, lines in scanning.items() if lines} == {}


async def test_every_query_a_sync_sends_reads_an_index_on_the_memory_engine(
    memory_traced: tuple[Services, Store, Finds],
):
    services, store, finds = memory_traced
    await a_day_of_sync(services, store)
    await a_day_of_photos(services, store)
    shapes = {repr(shape(command)): command for command in finds.commands if "find" in command}
    assert {"records", "receipts", "refusals", "conflicts", "history", "counters"} <= {
        command["find"] for command in shapes.values()
    }
    read = {key: await memory_candidates(store, command) for key, command in shapes.items()}
    assert {key: how for key, how in read.items() if "scan" in how["indexes"]} == {}
    paged = {key: how for key, how in read.items() if "'sort'" in key and "'limit'" in key}
    assert paged and all(how["stops_at_limit"] for how in paged.values()), paged


async def test_a_shape_without_an_index_is_reported_as_a_scan_on_the_memory_engine(
    memory_traced: tuple[Services, Store, Finds],
):
    _, store, _ = memory_traced
    await store.db["records"].insert_one({"_id": "x", "fields": {"status": "DONE"}, "seq": 1})
    unindexed = {"find": "records", "filter": {"fields.status": "DONE"}}
    assert (await memory_candidates(store, unindexed))["indexes"] == ["scan"]
    ranged = {"find": "records", "filter": {"owner": "rep1", "seq": {"$gt": 0}}, "sort": {"seq": 1}, "limit": 5}
    assert await memory_candidates(store, ranged) == {"indexes": ["owner_seq"], "stops_at_limit": True}


async def test_a_shape_without_an_index_is_reported_as_a_scan(traced: tuple[Services, Store, Finds]):
    _, store, _ = traced
    await store.db["records"].insert_one({"_id": "x", "fields": {"status": "DONE"}, "seq": 1})
    unindexed = {"find": "records", "filter": {"fields.status": "DONE"}}
    assert scans(await plan_of(store, unindexed))
    sorted_elsewhere = {"find": "records", "filter": {"seq": {"$gt": 0}}, "sort": {"updatedAt": 1}}
    assert scans(await plan_of(store, sorted_elsewhere))
