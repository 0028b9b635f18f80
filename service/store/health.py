"""Sync Health queries: devices, open refusals and conflicts, per rep."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.auth.roles import Role
from service.domain.anomalies import Anomaly, Severity
from service.domain.conflicts import ConflictStatus
from service.domain.health import SEVERITY, HealthStatus, HealthThresholds, device_health, worst
from service.domain.refusals import Refusal, RefusalKind, RefusalStatus
from service.store import anomalies, conflicts, identity, refusals
from service.store.database import Store
from service.store.identity import Device, User
from service.uploads import photo_refs
from service.uploads.photo_refs import Backlog


@dataclass(frozen=True)
class DeviceHealth:
    device: Device
    status: HealthStatus
    open_refusals: int
    open_conflicts: int
    photos: Backlog | None = None  # photos its records point at, overdue


@dataclass(frozen=True)
class RepHealth:
    rep: User
    status: HealthStatus
    devices: list[DeviceHealth]
    open_refusals: list[Refusal]  # record refusals, oldest first
    push_refusals: list[Refusal]  # open push refusals, newest first
    open_conflicts: int
    last_sync_at: datetime | None
    pending_photos: int = 0  # overdue photos over all its devices
    open_anomalies: list[Anomaly] = field(default_factory=list)  # newest first; a HIGH one needs attention


class HealthService:
    def __init__(
        self,
        store: Store,
        thresholds: HealthThresholds,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._thresholds = thresholds
        self._clock = clock

    async def device_status(self, device_id: str) -> HealthStatus:
        return (await self.device_statuses([device_id]))[device_id]

    async def device_statuses(
        self, device_ids: list[str], devices: dict[str, Device] | None = None
    ) -> dict[str, HealthStatus]:
        """Each device's status, in at most four reads whatever the number of devices (unknown ids: HEALTHY).

        ``devices``: those of ``device_ids`` the caller has just read (the ``syncStatus`` feed shows them),
        not read again; read here when not given. Open refusals and conflicts are counted only for devices
        that ever had one recorded, and overdue photos only for devices whose records ever pointed at one (a
        device document says so, marked in the transaction that records the first): the ``syncStatus`` feed
        asks after every push, and most devices never had any of them."""
        if devices is None:
            devices = await identity.get_devices(self._store, device_ids)
        ids = sorted(devices)
        open_refusals = await self._open_counts(
            refusals.COLLECTION,
            {"status": RefusalStatus.OPEN.value, "kind": RefusalKind.RECORD.value},
            [i for i in ids if devices[i].refusals_recorded != 0],
        )
        open_conflicts = await self._open_counts(
            conflicts.COLLECTION,
            {"status": ConflictStatus.OPEN.value},
            [i for i in ids if devices[i].conflicts_recorded != 0],
        )
        photos = await self._overdue_photos("deviceId", [i for i in ids if devices[i].photos_referenced != 0])
        statuses = {i: HealthStatus.HEALTHY for i in device_ids}
        for device_id, device in devices.items():
            found = self._device(device, open_refusals[device_id], open_conflicts[device_id], photos.get(device_id))
            statuses[device_id] = found.status
        return statuses

    def status_without_reads(self, device: Device) -> HealthStatus | None:
        """The device's status, when it needs no read: it never had a refusal or a conflict recorded, nor a
        record pointing at a photo (``device_statuses`` would read none of them). None otherwise."""
        if device.refusals_recorded != 0 or device.conflicts_recorded != 0 or device.photos_referenced != 0:
            return None
        return self._device(device, 0, 0, None).status

    async def _overdue_photos(self, by: str, ids: list[str]) -> dict[str, Backlog]:
        if not ids:
            return {}
        before = self._clock() - self._thresholds.photo_pending_after
        return await photo_refs.overdue(self._store, referenced_before=before, by=by, ids=ids)

    async def _open_counts(self, collection: str, query: dict[str, Any], device_ids: list[str]) -> Counter[str]:
        if not device_ids:
            return Counter()
        pipeline = [
            {"$match": {**query, "deviceId": {"$in": device_ids}}},
            {"$group": {"_id": "$deviceId", "count": {"$sum": 1}}},
        ]
        rows = await (await self._store.db[collection].aggregate(pipeline)).to_list()
        return Counter({row["_id"]: row["count"] for row in rows})

    def _device(self, device: Device, open_refusals: int, open_conflicts: int, photos: Backlog | None) -> DeviceHealth:
        status = device_health(
            last_sync_at=device.last_sync_at,
            queue_growing_since=device.queue_growing_since,
            registered_at=device.registered_at,
            open_problems=open_refusals + open_conflicts,
            now=self._clock(),
            thresholds=self._thresholds,
            overdue_photos=photos.count if photos else 0,
        )
        return DeviceHealth(device, status, open_refusals, open_conflicts, photos)

    async def sync_health(self, rep_id: str | None = None) -> list[RepHealth]:
        """Per rep (one rep, or every rep), worst first."""
        reps = [u for u in await identity.list_users(self._store, Role.REP) if rep_id in (None, u.id)]
        if not reps:
            return []
        rep_ids = [rep.id for rep in reps]
        devices = [d for d in await identity.list_devices(self._store) if d.user_id in rep_ids and d.revoked_at is None]
        open_query = {"repId": {"$in": rep_ids}, "status": RefusalStatus.OPEN.value}
        open_refusals = [
            refusals.from_document(d)
            for d in await self._store.db[refusals.COLLECTION].find(open_query).sort("createdAt", 1).to_list()
        ]
        open_conflicts = [
            conflicts.from_document(d)
            for d in await self._store.db[conflicts.COLLECTION]
            .find({"repId": {"$in": rep_ids}, "status": ConflictStatus.OPEN.value})
            .to_list()
        ]
        refusals_by_device = Counter(r.device_id for r in open_refusals if r.kind is RefusalKind.RECORD)
        conflicts_by_device = Counter(c.device_id for c in open_conflicts)
        photos = await self._overdue_photos("repId", rep_ids)
        flags = await anomalies.open_for_reps(self._store, rep_ids)
        result = []
        for rep in reps:
            rep_devices = [
                self._device(d, refusals_by_device[d.id], conflicts_by_device[d.id], photos.get(d.id))
                for d in devices
                if d.user_id == rep.id
            ]
            mine = [r for r in open_refusals if r.rep_id == rep.id]
            record_refusals = [r for r in mine if r.kind is RefusalKind.RECORD]
            push_refusals = sorted(
                (r for r in mine if r.kind is RefusalKind.PUSH), key=lambda r: r.created_at, reverse=True
            )
            statuses = [d.status for d in rep_devices] or [HealthStatus.STALE]  # never synced from any device
            rep_flags = [a for a in flags if a.rep_id == rep.id]
            if record_refusals or push_refusals or any(a.severity is Severity.HIGH for a in rep_flags):
                statuses.append(HealthStatus.NEEDS_ATTENTION)
            syncs = [d.device.last_sync_at for d in rep_devices if d.device.last_sync_at]
            result.append(
                RepHealth(
                    rep=rep,
                    status=worst(statuses),
                    devices=rep_devices,
                    open_refusals=record_refusals,
                    push_refusals=push_refusals,
                    open_conflicts=sum(1 for c in open_conflicts if c.rep_id == rep.id),
                    last_sync_at=max(syncs, default=None),
                    pending_photos=sum(d.photos.count for d in rep_devices if d.photos),
                    open_anomalies=rep_flags,
                )
            )
        return sorted(result, key=lambda h: (SEVERITY.index(h.status), h.rep.name))
