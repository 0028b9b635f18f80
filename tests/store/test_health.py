"""Sync Health over the real store: device status follows pushes and status reports."""

from datetime import UTC, datetime, timedelta

from service.app import build_services
from service.auth.roles import Role
from service.domain.health import HealthStatus, HealthThresholds
from service.domain.record_types import RecordType
from service.services import Services
from service.settings import Settings
from service.store import identity, refusals
from service.store.database import Store
from service.store.health import HealthService
from tests.factories import change
from tests.store.test_push_reads import Reads
from tests.store.watched import watched_store


async def register(services: Services, name: str, device_id: str) -> str:
    user, _ = await services.access.create_user(name, Role.REP)
    principal = await services.access.authenticate((await services.access.issue_token(user.id)).token)
    await services.access.register_device(principal, device_id, "Phone", "android", "1.0")
    return user.id


def health_at(services: Services, now: datetime) -> HealthService:
    return HealthService(services.store, HealthThresholds(), clock=lambda: now)


async def ali_visits_siti_does_not_yet(services: Services, ali_device: str, siti_device: str) -> str:
    """Two reps; Ali's device pushed a visit at his outlet. Siti's id."""
    ali = await register(services, "Ali", ali_device)
    siti = await register(services, "Siti", siti_device)
    await services.sync.write_record(
        RecordType.OUTLET, "o1", {"name": "Kedai Ali", "repIds": [ali]}, None, user_id="hq"
    )
    await services.sync.push(
        [change(RecordType.VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], device_id=ali_device, rep_id=ali
    )
    return siti


async def test_reps_are_listed_worst_first_with_what_needs_attention(services: Services):
    siti = await ali_visits_siti_does_not_yet(services, "d-ali", "d-siti")
    await services.sync.push(
        [change(RecordType.VISIT, "v2", {"outletId": "gone", "status": "PLANNED"})], device_id="d-siti", rep_id=siti
    )
    await services.sync.refuse_push(
        code="REVOKED", reason="Device revoked.", device_id="d-siti", rep_id=siti, detail={}
    )
    reps = await services.health.sync_health()
    assert [(h.rep.name, h.status) for h in reps] == [
        ("Siti", HealthStatus.NEEDS_ATTENTION),
        ("Ali", HealthStatus.HEALTHY),
    ]
    siti_health = reps[0]
    assert [r.code for r in siti_health.open_refusals] == ["OUTLET_NOT_FOUND"]
    assert [r.code for r in siti_health.push_refusals] == ["REVOKED"]
    assert siti_health.devices[0].open_refusals == 1


async def test_silence_and_a_queue_that_keeps_growing_are_surfaced_on_day_one(services: Services):
    ali = await register(services, "Ali", "d1")
    await services.sync.report_status(device_id="d1", rep_id=ali, queue_depth=5, app_version="1.1")
    await services.sync.report_status(device_id="d1", rep_id=ali, queue_depth=9, app_version="1.1")
    device = await identity.get_device(services.store, "d1")
    assert device is not None and device.queue_depth == 9 and device.app_version == "1.1"
    assert device.queue_growing_since is not None
    tomorrow = datetime.now(UTC) + timedelta(hours=25)
    assert await health_at(services, tomorrow).device_status("d1") is HealthStatus.BACKLOGGED
    await services.sync.report_status(device_id="d1", rep_id=ali, queue_depth=2, app_version="1.1")
    assert await health_at(services, tomorrow).device_status("d1") is HealthStatus.STALE
    assert await services.health.device_status("d1") is HealthStatus.HEALTHY


async def test_many_devices_statuses_come_from_four_reads(services: Services):
    ali = await register(services, "Ali", "d1")
    siti = await register(services, "Siti", "d2")
    await services.sync.write_record(
        RecordType.OUTLET, "o1", {"name": "Kedai Ali", "repIds": [ali]}, None, user_id="hq"
    )
    await services.sync.push(
        [change(RecordType.VISIT, "v1", {"outletId": "o1", "status": "PLANNED"})], device_id="d1", rep_id=ali
    )
    await services.sync.push(
        [change(RecordType.VISIT, "v2", {"outletId": "gone", "status": "PLANNED"})], device_id="d2", rep_id=siti
    )
    statuses = await services.health.device_statuses(["d1", "d2", "unknown"])
    assert statuses == {"d1": HealthStatus.HEALTHY, "d2": HealthStatus.NEEDS_ATTENTION, "unknown": HealthStatus.HEALTHY}


async def test_statuses_of_devices_just_read_do_not_read_them_again(settings: Settings, store: Store, embedded: bool):
    """The ``syncStatus`` feed reads the pushing devices to show them, then asks for their statuses."""
    reads = Reads()
    async with watched_store(settings, embedded, reads) as watched:
        services = build_services(settings, watched)
        await ali_visits_siti_does_not_yet(services, "d1", "d2")
        devices = await identity.get_devices(watched, ["d1", "d2", "unknown"])
        reads.collections.clear()
        given = await services.health.device_statuses(["d1", "d2", "unknown"], devices)
        assert identity.DEVICES not in reads.collections
        assert given == await services.health.device_statuses(["d1", "d2", "unknown"])
        assert reads.collections.count(identity.DEVICES) == 1


async def test_open_problems_are_counted_only_for_devices_that_ever_had_one(
    settings: Settings, store: Store, embedded: bool
):
    """The ``syncStatus`` feed asks for the pushing devices' statuses after every push."""
    reads = Reads()
    async with watched_store(settings, embedded, reads) as watched:
        services = build_services(settings, watched)
        siti = await ali_visits_siti_does_not_yet(services, "d1", "d2")
        reads.aggregated.clear()
        assert await services.health.device_statuses(["d1", "d2"]) == {
            "d1": HealthStatus.HEALTHY,
            "d2": HealthStatus.HEALTHY,
        }
        assert reads.aggregated == []

        await services.sync.push(
            [change(RecordType.VISIT, "v2", {"outletId": "gone", "status": "PLANNED"})], device_id="d2", rep_id=siti
        )
        reads.aggregated.clear()
        assert await services.health.device_statuses(["d1", "d2"]) == {
            "d1": HealthStatus.HEALTHY,
            "d2": HealthStatus.NEEDS_ATTENTION,
        }
        assert reads.aggregated == [refusals.COLLECTION]
