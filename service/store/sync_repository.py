"""The sync engine's storage, on MongoDB (implements ``service.domain.ports.SyncRepository``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from functools import partial
from typing import Any
from weakref import WeakKeyDictionary, WeakSet

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.anomalies import Anomaly, Baselines
from service.domain.anomalies.query import AnomalyCursor, AnomalyPage, AnomalyQuery
from service.domain.changes import Change
from service.domain.conflicts import Conflict, ConflictStatus
from service.domain.initial_sync import OPEN_STATUSES, WINDOWED
from service.domain.ports import Committed, PullPage, SyncInfo
from service.domain.push_plan import PushPlan, PushSnapshot
from service.domain.record_types import RecordType
from service.domain.records import Record, RecordKey, references_of
from service.domain.refusals import Refusal, record_refusal_id, reused_refusal_id
from service.domain.scope_exits import ScopeExit
from service.store import (
    anomalies,
    anomaly_baselines,
    conflicts,
    crdt_archives,
    history,
    identity,
    receipts,
    records,
    refusals,
    scope_exits,
    sequence,
)
from service.store.database import Store
from service.store.outlet_scopes import OutletScopes
from service.store.transactions import ConcurrentWrite, UnitOfWork
from service.store.write_batch import WriteBatch
from service.uploads import photo_refs


class MongoSyncRepository:
    def __init__(self, store: Store, unit_of_work: UnitOfWork | None = None) -> None:
        self._store = store
        self._unit_of_work = unit_of_work or UnitOfWork(store)
        self._outlet_scopes = OutletScopes(store)
        # by transaction: the pushing device as its push read it (what it has had recorded), until the commit
        self._pushing: WeakKeyDictionary[AsyncClientSession, identity.Device] = WeakKeyDictionary()
        self._baselines = anomaly_baselines.Remembered()
        # by transaction: the revisions of the baselines it read, which its write replaces
        self._baseline_revisions: WeakKeyDictionary[AsyncClientSession, anomaly_baselines.Revisions] = (
            WeakKeyDictionary()
        )
        # push chunks that met a stored receipt they did not read: they run again reading them
        self._resent: WeakSet[SyncInfo] = WeakSet()

    async def in_transaction[T](self, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
        return await self._unit_of_work.run(work)

    async def load_push_snapshot(
        self, sync: SyncInfo, at: datetime, changes: list[Change], tx: AsyncClientSession
    ) -> PushSnapshot:
        """Touches the device first (its last sync, at ``at``): that write also says whether it ever had
        refusals or conflicts, so a device that never had one kind costs no read of it.

        A device that never had either sends again only what it did not hear answered (a lost answer),
        so its push does not read receipts either: it inserts one for each change, and one that is
        already stored fails the insert (a duplicate key) and the push runs again reading them."""
        device_id, rep_id = sync.device_id, sync.rep_id
        device = await self._record_sync(sync, at, tx)
        if device is not None:
            self._pushing[tx] = device
        offline_ids = [change.offline_id for change in changes]
        keys = {key for change in changes for key in (change.key, *change.references)}
        unmarked = device is not None and device.refusals_recorded == 0 and device.conflicts_recorded == 0
        if unmarked and sync not in self._resent:
            found_receipts = {}
        else:
            found_receipts = await receipts.load(self._store, device_id, offline_ids, tx)
        found_records = await records.load(self._store, keys, tx)
        by_offline_id: dict[str, Refusal] = {}
        reused: dict[str, Refusal] = {}
        if device is None or device.refusals_recorded != 0:
            refusal_ids = [record_refusal_id(device_id, change.offline_id) for change in changes]
            reused_ids = [reused_refusal_id(device_id, change.offline_id, change.digest) for change in changes]
            for refusal in await refusals.load_for_push(self._store, device_id, [*refusal_ids, *reused_ids], tx):
                if refusal.offline_id is not None and refusal.id == record_refusal_id(device_id, refusal.offline_id):
                    by_offline_id[refusal.offline_id] = refusal
                else:
                    reused[refusal.id] = refusal
        found_conflicts: dict[str, Conflict] = {}
        if device is None or device.conflicts_recorded != 0:
            conflict_ids = [r.conflict_id for r in found_receipts.values() if r.conflict_id]
            record_ids = [change.record_id for change in changes]
            found_conflicts = await conflicts.load_for_push(self._store, device_id, conflict_ids, record_ids, tx)
        others = [key for key, record in found_records.items() if record.owner not in (None, rep_id)]
        left_scope = await self._assignees(await scope_exits.left(self._store, rep_id, others, tx), found_records)
        earlier_epochs = [  # updates made on an epoch a compaction has ended since
            (change.key, change.made_on_epoch)
            for change in changes
            if change.crdt_update is not None
            and change.key in found_records
            and change.made_on_epoch < found_records[change.key].crdt_epoch
        ]
        return PushSnapshot(
            found_records,
            found_receipts,
            by_offline_id,
            found_conflicts,
            left_scope=left_scope,
            reused=reused,
            archives=await crdt_archives.load(self._store, earlier_epochs, tx),
        )

    async def _assignees(self, keys: set[RecordKey], found: dict[RecordKey, Record]) -> dict[RecordKey, str]:
        """Each record's assignee as a manager reads it: name and id."""
        owners = {key: str(found[key].owner) for key in keys}
        users = await identity.get_users(self._store, list(owners.values())) if owners else {}
        return {
            key: f"{users[owner].name} ({owner})" if owner in users else f"rep {owner}" for key, owner in owners.items()
        }

    async def commit(self, plan: PushPlan, sync: SyncInfo | None, tx: AsyncClientSession) -> Committed:
        """The plan's writes, after the numbers they take, in one ``WriteBatch`` (one command where the store
        takes a ``bulkWrite``), receipts first: a push that met a receipt it did not read writes nothing else
        before it runs again."""
        writes = list(plan.writes.values())
        exits = plan.scope_exits
        numbers = await sequence.take(
            self._store,
            tx,
            len(writes) + len(exits) + len(plan.events),
            revocations_seen=sync.revocations_seen if sync is not None else None,
        )
        record_seqs, exit_seqs = numbers[: len(writes)], numbers[len(writes) : len(writes) + len(exits)]
        event_seqs = numbers[len(writes) + len(exits) :]
        batch = WriteBatch(self._store)
        receipts.save(batch, list(plan.receipts.values()), plan.stored_receipts)
        stored = records.write(
            batch,
            [
                (write, seq, references_of(write.record.type, write.record.fields))
                for write, seq in zip(writes, record_seqs, strict=True)
            ],
        )
        crdt_archives.save(batch, plan.archives)
        pointing_at_photos = photo_refs.note_references(batch, stored.values())
        scope_exits.save(batch, list(zip(exits, exit_seqs, strict=True)))
        conflicts.save(batch, plan.conflicts)
        refusals.save(batch, plan.refusals.values())
        marked = bool(plan.conflicts or plan.refusals or pointing_at_photos)
        if marked:
            identity.note_recorded(
                batch,
                {refusal.device_id for refusal in plan.refusals.values() if refusal.device_id},
                {conflict.device_id for conflict in plan.conflicts},
                pointing_at_photos,
                known=self._pushing.get(tx),
            )
        anomalies.save(batch, plan.anomalies.values())
        revisions = self._baseline_revisions.pop(tx, {}) if plan.baselines is not None else {}
        if plan.baselines is not None:
            written = anomaly_baselines.save(batch, plan.baselines, revisions)
            self._unit_of_work.after_commit(tx, partial(self._baselines.keep, written))
        events = history.append(batch, plan.events, event_seqs)
        try:
            await batch.send(tx)
        except ConcurrentWrite as error:
            if error.collection == receipts.COLLECTION and sync is not None:
                self._resent.add(sync)
            if error.collection == anomaly_baselines.COLLECTION:
                self._baselines.forget(list(revisions))  # the push runs again on what the store holds now
            raise
        # A push touched its device as it loaded: that is the device as stored, unless this commit marked it.
        device = None if marked else self._pushing.get(tx)
        if sync is not None and not sync.is_push:
            device = await self._record_sync(sync, plan.events[-1].at if plan.events else sync.received_at, tx)
        if sync is not None and (own := [event for event in events if event.sync_id == sync.sync_id]):
            self._unit_of_work.marked_by(tx, history.COLLECTION, history.written(own[-1]))  # marks the commit
        return Committed(stored, events, device, plan.refusals, plan.anomalies, numbers)

    async def _record_sync(self, sync: SyncInfo, at: datetime, tx: AsyncClientSession) -> identity.Device | None:
        return await identity.record_sync(
            self._store,
            sync.device_id,
            at=at,
            queue_depth=sync.queue_depth,
            app_version=sync.app_version,
            session=tx,
        )

    async def load_records(
        self, keys: Iterable[RecordKey], tx: AsyncClientSession | None = None
    ) -> dict[RecordKey, Record]:
        return await records.load(self._store, keys, tx)

    async def get_conflict(self, conflict_id: str, tx: AsyncClientSession | None = None) -> Conflict | None:
        return await conflicts.get(self._store, conflict_id, tx)

    async def get_refusal(self, refusal_id: str, tx: AsyncClientSession | None = None) -> Refusal | None:
        return await refusals.get(self._store, refusal_id, tx)

    async def load_baselines(self, rep_id: str, device_id: str, tx: AsyncClientSession) -> Baselines:
        baselines, self._baseline_revisions[tx] = await anomaly_baselines.load(
            self._store, rep_id, device_id, tx, self._baselines
        )
        return baselines

    async def get_anomaly(self, anomaly_id: str, tx: AsyncClientSession | None = None) -> Anomaly | None:
        return await anomalies.get(self._store, anomaly_id, tx)

    async def get_anomalies(self, anomaly_ids: list[str]) -> dict[str, Anomaly]:
        return await anomalies.get_many(self._store, anomaly_ids)

    async def anomaly_page(self, query: AnomalyQuery, after: AnomalyCursor | None, limit: int) -> AnomalyPage:
        return await anomalies.page(self._store, query, after, limit)

    async def current_seq(self, revocations_seen: int | None = None) -> int:
        return await sequence.current(self._store, revocations_seen=revocations_seen)

    async def pull_page(
        self,
        rep_id: str,
        after_seq: int,
        watermark: int | None,
        limit: int,
        window: tuple[datetime, datetime],
        revocations_seen: int | None = None,
        head: int | None = None,
    ) -> PullPage:
        """The rep's scope after ``after_seq``, in sequence order.

        Each part of the scope is its own index-driven read (own records by ``owner, seq``;
        products by ``type, seq``; outlets assigned to the rep by ``reps``; outlets its records
        point at by ``_id``), merged here by ``seq``: a page costs what it returns, plus the
        rep's outlets. Before the watermark (an initial sync) only live, current records
        are kept, checked here on what the index read.

        The parts are read one after another while others commit, so the page keeps only what
        was committed before the first read (up to its *ceiling*): every part saw all of
        ``(after_seq, ceiling]``, and a change committed meanwhile waits for the next page
        instead of being stepped over by a cursor another part moved past it. (Sequence numbers
        commit in order: they are taken from one document inside each transaction. The ceiling
        is applied here, not in the queries, so each stays the index-driven shape it was.)
        """
        ceiling = head if head is not None else await sequence.current(self._store, revocations_seen=revocations_seen)
        if after_seq >= ceiling:  # nothing committed after the cursor: a poll with nothing new is one read
            return PullPage([], after_seq, False)
        collection = self._store.db[records.COLLECTION]
        outlet_ids = sorted(await self._outlet_scopes.of(rep_id, ceiling))
        after = {"seq": {"$gt": after_seq}}
        reads = [
            collection.find({"owner": rep_id, **after}).sort("seq", ASCENDING).limit(limit + 1),
            collection.find({"type": RecordType.PRODUCT.value, **after}).sort("seq", ASCENDING).limit(limit + 1),
            collection.find({"reps": rep_id, **after}),  # the rep's assigned outlets: an array, no range index
        ]
        if outlet_ids:
            reads.append(collection.find({"_id": {"$in": outlet_ids}, **after}))
        initial = watermark is not None and after_seq < watermark
        documents = {  # one record may come from several parts
            d["_id"]: d for read in reads for d in await read.to_list() if d["seq"] <= ceiling
        }
        stale = {
            key for key, d in documents.items() if initial and d["seq"] <= (watermark or 0) and not _current(d, window)
        }
        found: list[Record | ScopeExit] = [records.from_document(d) for d in documents.values()]
        # Exits before the initial sync's watermark concern records the device never received.
        exits_after = max(after_seq, watermark) if initial and watermark is not None else after_seq
        if exits_after < ceiling:  # an initial sync nothing was committed during has none to read
            exits = await scope_exits.after(self._store, rep_id, exits_after, limit + 1)
            found += [exit_ for exit_ in exits if exit_.seq <= ceiling]
        found.sort(key=lambda entry: entry.seq)
        page, has_more = found[:limit], len(found) > limit
        # A last page carries all of (after_seq, ceiling]: its cursor moves to the ceiling, past the numbers
        # of what is not the rep's (others' records, history events), so a poll at the head reads nothing.
        last_seq = page[-1].seq if has_more else ceiling
        if initial:  # before the watermark only live, active, current records; after it, everything
            page = [
                entry for entry in page if not isinstance(entry, Record) or records.record_id(entry.key) not in stale
            ]
        else:
            page += await self._newly_referenced_outlets([r for r in page if isinstance(r, Record)])
        return PullPage(page, last_seq, has_more)

    async def outlets_referenced_by(
        self,
        rep_id: str,
        outlet_ids: list[str],
        tx: AsyncClientSession | None = None,
        besides: RecordKey | None = None,
    ) -> set[str]:
        """Of ``outlet_ids``, those that records owned by the rep (``besides`` that one) point at (one query)."""
        refs = [records.record_id((RecordType.OUTLET, outlet_id)) for outlet_id in outlet_ids]
        query = {"owner": rep_id, "refs": {"$in": refs}}
        skipped = records.record_id(besides) if besides is not None else None
        cursor = self._store.db[records.COLLECTION].find(query, {"refs": 1}, session=tx)
        found = {
            ref for document in await cursor.to_list() if document["_id"] != skipped for ref in document.get("refs", ())
        }
        return {outlet_id for outlet_id, ref in zip(outlet_ids, refs, strict=True) if ref in found}

    async def reps_referencing(
        self, key: RecordKey, rep_ids: Iterable[str], tx: AsyncClientSession | None = None
    ) -> set[str]:
        query = {"owner": {"$in": sorted(set(rep_ids))}, "refs": records.record_id(key)}
        cursor = self._store.db[records.COLLECTION].find(query, {"_id": 0, "owner": 1}, session=tx)
        return {document["owner"] for document in await cursor.to_list()}

    async def find_conflicts(self, rep_id: str | None, status: ConflictStatus | None, limit: int) -> list[Conflict]:
        return await conflicts.find(self._store, rep_id=rep_id, status=status, limit=limit)

    async def _newly_referenced_outlets(self, page: list[Record]) -> list[Record]:
        """Outlets that owned records in a delta point at, which the device may not have yet."""
        in_page = {record.key for record in page}
        wanted = {
            key
            for record in page
            if record.owner is not None
            for key in references_of(record.type, record.fields)
            if key[0] is RecordType.OUTLET and key not in in_page
        }
        found = await records.load(self._store, wanted)
        return [record for record in found.values() if not record.deleted]


_WINDOWED = frozenset(record_type.value for record_type in WINDOWED)


def _current(document: dict[str, Any], window: tuple[datetime, datetime]) -> bool:
    """Live, active and current (open, or in the window around today): what an initial sync sends."""
    fields = document.get("fields") or {}
    if document.get("deleted") or fields.get("active") is False:
        return False
    when = document.get("when")
    return (
        document["type"] not in _WINDOWED
        or fields.get("status") in OPEN_STATUSES
        or (when is not None and window[0] <= when < window[1])
    )
