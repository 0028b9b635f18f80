"""What a push reads: a device that never had a refusal or a conflict costs no read of them. The ``syncStatus``
feed reads overdue photos only for devices whose records pointed at one."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from pymongo import monitoring

from service.api.subscriptions import STATUS_ACTIONS, status_view
from service.app import build_services
from service.auth.roles import Role
from service.domain.health import HealthStatus
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import RecordType
from service.domain.refusals import RefusalAction
from service.services import Services
from service.settings import Settings
from service.store import anomaly_baselines, conflicts, identity, receipts, records, refusals
from service.store.database import Store
from service.uploads import photo_refs
from tests.factories import change
from tests.store.test_push_storage import seed
from tests.store.watched import Commands, watched_store, written

VISIT = RecordType.VISIT


class Reads(monitoring.CommandListener):
    """The collections each ``find`` read, each ``aggregate`` read and each ``update`` wrote."""

    def __init__(self) -> None:
        self.collections: list[str] = []
        self.aggregated: list[str] = []
        self.updated: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find":
            self.collections.append(event.command["find"])
        if event.command_name == "aggregate":
            self.aggregated.append(event.command["aggregate"])
        self.updated += [collection for kind, collection in written(event) if kind == "update"]

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@asynccontextmanager
async def phone_on_watched_store(settings: Settings, embedded: bool) -> AsyncIterator[tuple[Reads, Store, Services]]:
    """A registered device "phone" of rep1 and the seeded outlet, on a store whose reads are told to ``Reads``."""
    reads = Reads()
    phone = identity.Device("phone", "rep1", "Phone", "android", "1.0", datetime.now(UTC))
    async with watched_store(settings, embedded, reads) as watched:
        await identity.insert_device(watched, phone)
        services = build_services(settings, watched)
        await seed(services)
        yield reads, watched, services


async def test_refusals_are_read_only_once_the_device_has_had_one(settings: Settings, store: Store, embedded: bool):
    async with phone_on_watched_store(settings, embedded) as (reads, watched, services):
        reads.collections.clear()
        [ok] = (
            await services.sync.push(
                [change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], device_id="phone", rep_id="rep1"
            )
        ).outcomes
        assert ok.status is ChangeStatus.APPLIED
        assert refusals.COLLECTION not in reads.collections and conflicts.COLLECTION not in reads.collections

        bad = change(VISIT, "v2", {"outletId": "o1", "status": "LOST"})
        [refused] = (await services.sync.push([bad], device_id="phone", rep_id="rep1")).outcomes
        assert refused.status is ChangeStatus.REFUSED and refused.refusal is not None
        device = await identity.get_device(watched, "phone")
        assert device is not None and (device.refusals_recorded, device.conflicts_recorded) == (1, 0)

        reads.collections.clear()
        reads.updated.clear()
        [again] = (await services.sync.push([bad], device_id="phone", rep_id="rep1")).outcomes
        assert again.refusal is not None and (again.refusal.id, again.refusal.attempts) == (refused.refusal.id, 2)
        assert refusals.COLLECTION in reads.collections and conflicts.COLLECTION not in reads.collections
        assert identity.DEVICES not in reads.updated  # already marked: its push touched it once, as it loaded


async def test_a_device_without_refusals_or_conflicts_reads_receipts_only_when_it_sends_a_change_again(
    settings: Settings, store: Store, embedded: bool
):
    async with phone_on_watched_store(settings, embedded) as (reads, watched, services):
        planned = change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})

        reads.collections.clear()
        [ok] = (await services.sync.push([planned], device_id="phone", rep_id="rep1")).outcomes
        assert ok.status is ChangeStatus.APPLIED
        assert receipts.COLLECTION not in reads.collections

        # The answer was lost: the phone sends the change again, with a new one. The receipt's insert finds
        # the stored one, and the push runs again reading them.
        reads.collections.clear()
        later = change(VISIT, "v2", {"outletId": "o1", "status": "PLANNED"})
        again, new = (await services.sync.push([planned, later], device_id="phone", rep_id="rep1")).outcomes
        assert (again.status, again.duplicate_of, new.status) == (
            ChangeStatus.DUPLICATE,
            ChangeStatus.APPLIED,
            ChangeStatus.APPLIED,
        )
        assert receipts.COLLECTION in reads.collections
        assert again.record is not None and again.record.version == 1
        stored = await records.load(watched, [(VISIT, "v1"), (VISIT, "v2")])
        assert [stored[(VISIT, id_)].version for id_ in ("v1", "v2")] == [1, 1]
        [receipt] = (await receipts.load(watched, "phone", [planned.offline_id])).values()
        assert (receipt.status, receipt.attempts) == (ChangeStatus.APPLIED, 2)


async def test_a_device_older_than_the_counts_reads_them_all(services: Services):
    await seed(services)
    bad = change(VISIT, "v2", {"outletId": "o1", "status": "LOST"})
    [refused] = (await services.sync.push([bad], device_id="unregistered", rep_id="rep1")).outcomes
    [again] = (await services.sync.push([bad], device_id="unregistered", rep_id="rep1")).outcomes
    assert refused.refusal is not None and again.refusal is not None and again.refusal.attempts == 2


async def test_a_push_reads_the_open_refusals_that_block_not_those_to_acknowledge(services: Services):
    await seed(services)
    noted = change(VISIT, "v3", {"outletId": "o1", "status": "PLANNED", "plannedAt": "not a time"})
    blocking = change(VISIT, "v4", {"outletId": "gone", "status": "PLANNED"})
    [ack, fix] = (await services.sync.push([noted, blocking], device_id="phone", rep_id="rep1")).outcomes
    assert ack.refusal is not None and ack.refusal.action is RefusalAction.ACKNOWLEDGE
    assert fix.refusal is not None and fix.refusal.action is RefusalAction.FIX_DATA

    read = await refusals.load_for_push(services.store, "phone", [])
    assert [r.id for r in read] == [fix.refusal.id]
    read = await refusals.load_for_push(services.store, "phone", [ack.refusal.id])
    assert sorted(r.id for r in read) == sorted([ack.refusal.id, fix.refusal.id])


async def test_baselines_are_read_and_written_only_when_a_detector_looks_at_the_push(
    settings: Settings, store: Store, embedded: bool
):
    reads = Reads()
    async with watched_store(settings, embedded, reads) as watched:
        services = build_services(settings, watched)
        await seed(services)
        refused = change(VISIT, "v1", {"outletId": "o1", "status": "LOST"})
        applied = change(VISIT, "v2", {"outletId": "o1", "status": "PLANNED"})
        for changes, queue_depth, looked_at in (
            ([refused], None, False),
            ([refused], 3, True),
            ([applied], None, True),
        ):
            reads.collections.clear()
            reads.updated.clear()
            await services.sync.push(changes, device_id="phone", rep_id="rep1", queue_depth=queue_depth)
            read = anomaly_baselines.COLLECTION in reads.collections  # or remembered from the push before
            written = anomaly_baselines.COLLECTION in reads.updated
            assert (written, read and not looked_at) == (looked_at, False), (changes[0].offline_id, queue_depth)


async def test_the_status_feed_reads_overdue_photos_only_for_devices_whose_records_pointed_at_one(
    settings: Settings, store: Store, embedded: bool
):
    overdue_at_once = dataclasses.replace(settings, photo_pending_after_hours=0)
    async with phone_on_watched_store(overdue_at_once, embedded) as (reads, watched, services):
        planned = change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})
        await services.sync.push([planned], device_id="phone", rep_id="rep1")
        reads.collections.clear()
        assert await services.health.device_statuses(["phone"]) == {"phone": HealthStatus.HEALTHY}
        assert photo_refs.COLLECTION not in reads.collections

        photo = {"attachmentId": "a1"}
        with_photo = change(VISIT, "v2", {"outletId": "o1", "status": "PLANNED", "photos": [photo]})
        await services.sync.push([with_photo], device_id="phone", rep_id="rep1")
        device = await identity.get_device(watched, "phone")
        assert device is not None and device.photos_referenced == 1
        reads.collections.clear()
        assert await services.health.device_statuses(["phone"]) == {"phone": HealthStatus.BACKLOGGED}
        assert photo_refs.COLLECTION in reads.collections


async def test_the_status_feed_reads_each_rep_once(settings: Settings, store: Store, embedded: bool):
    commands = Commands()
    async with watched_store(settings, embedded, commands) as watched:
        await identity.insert_user(watched, identity.User("rep1", "Ana", Role.REP))
        users = identity.KnownUsers(watched)
        assert await users.get_many(["rep1", "nobody"]) == {"rep1": identity.User("rep1", "Ana", Role.REP)}
        read = commands.collections.count(identity.USERS)
        assert await users.get_many(["rep1"]) == {"rep1": identity.User("rep1", "Ana", Role.REP)}
        assert commands.collections.count(identity.USERS) == read  # known: no read


async def test_the_status_feed_shows_a_device_it_pushed_through_without_a_read(
    settings: Settings, store: Store, embedded: bool
):
    async with phone_on_watched_store(settings, embedded) as (reads, watched, services):
        await identity.insert_user(watched, identity.User("rep1", "Ana", Role.REP))
        feed = services.events.subscribe(lambda event: event.action in STATUS_ACTIONS, status_view(services))
        async with feed as subscription:
            deliveries = subscription.events()
            visit = change(VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})
            await services.sync.push([visit], device_id="phone", rep_id="rep1")
            first = (await anext(deliveries)).shown  # the rep is read once
            reads.collections.clear()
            visit = change(VISIT, "v2", {"outletId": "o1", "status": "PLANNED"})
            await services.sync.push([visit], device_id="phone", rep_id="rep1")
            shown = (await anext(deliveries)).shown
            assert reads.collections.count(identity.DEVICES) == reads.collections.count(identity.USERS) == 0
            assert (shown.device.id, shown.rep, shown.status) == ("phone", first.rep, HealthStatus.HEALTHY)
            assert shown.device.last_sync_at > first.device.last_sync_at  # as this push left it

            refused = change(VISIT, "v3", {"outletId": "o1", "status": "LOST"})
            await services.sync.push([refused], device_id="phone", rep_id="rep1")
            assert (await anext(deliveries)).shown.status is HealthStatus.NEEDS_ATTENTION  # read: it has one now
