"""Who may see and change which record: the one place that answers it.

Staff (ADMIN, MANAGER) and integrators are not bound to a rep: they see every
record (``rep_id`` None). A rep, through its user or its devices, sees its own
owned records, products, and the outlets of its outlet scope: outlets whose
``repIds`` hold it, outlets its devices created, and outlets referenced by
records assigned to it. Its devices change only those outlets (with
``OutletAccess.ALL``: every outlet, though pulls still carry only the scope)
and never ``repIds``, which managers write.

The store keeps ``assigned_reps`` of each outlet at the top level of its
document (``reps``, indexed), so scope checks and pulls are index lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from service.domain.changes import Change
from service.domain.conflicts import Conflict, ConflictStatus
from service.domain.record_types import POLICY, Policy, RecordType
from service.domain.records import Record, RecordKey, references_of
from service.domain.refusals import RefusalAction, Verdict
from service.domain.scope_exits import ScopeExit, owners_left

REP_IDS = "repIds"
OUTLET = RecordType.OUTLET


class OutletAccess(Enum):
    SCOPE = "scope"  # reps change and reference the outlets of their scope
    ALL = "all"  # reps change and reference every outlet


def assigned_reps(record: Record) -> list[str]:
    """The reps whose scope a shared record is in by itself: its ``repIds`` and the rep who created it."""
    if POLICY[record.type] is not Policy.SHARED:
        return []
    listed = record.fields.get(REP_IDS)
    reps = {rep for rep in listed if isinstance(rep, str)} if isinstance(listed, list) else set()
    if record.created_by_rep is not None:
        reps.add(record.created_by_rep)
    return sorted(reps)


def reps_unassigned(before: Record | None, after: Record) -> tuple[str, ...]:
    """Reps a write of a shared record takes off its assigned reps (a manager's new ``repIds``)."""
    if before is None or POLICY[after.type] is not Policy.SHARED:
        return ()
    return tuple(rep for rep in assigned_reps(before) if rep not in assigned_reps(after))


@dataclass(frozen=True)
class Scope:
    """What one caller may see and change among the records at hand.

    ``referenced``: the ids of the outlets, among those looked at, that records
    assigned to the rep point at (loaded in one query).
    """

    rep_id: str | None  # None: not bound to a rep, sees and changes everything
    access: OutletAccess = OutletAccess.SCOPE
    referenced: frozenset[str] = frozenset()

    def holds(self, outlet: Record) -> bool:
        """The outlet is in the rep's outlet scope."""
        return self.rep_id is None or self.rep_id in assigned_reps(outlet) or outlet.id in self.referenced

    def may_use(self, outlet: Record) -> bool:
        """The rep may change the outlet and record work against it."""
        return self.access is OutletAccess.ALL or self.holds(outlet)

    def may_see(self, record: Record) -> bool:
        if self.rep_id is None:
            return True
        match POLICY[record.type]:
            case Policy.REFERENCE:
                return True
            case Policy.SHARED:
                return self.may_use(record)
            case Policy.OWNED:
                return record.owner == self.rep_id

    def shown(self, record: Record | None) -> Record | None:
        """The record, if the caller may see it."""
        return record if record is not None and self.may_see(record) else None

    def check_shared_change(self, change: Change, current: Record | None) -> Verdict | None:
        """A device changes an outlet of its rep's scope, or creates one."""
        if self.rep_id is None:
            return None
        if current is not None and not self.may_use(current):
            return Verdict(
                "OUT_OF_SCOPE",
                f"Outlet {change.record_id} is not assigned to this rep, so this device cannot change it. "
                "A manager can assign the outlet to the rep (repIds).",
                RefusalAction.FIX_DATA,
            )
        return None

    def check_outlet_references(self, change: Change, records: Mapping[RecordKey, Record]) -> Verdict | None:
        """An owned record a device writes may point only at outlets the rep may use."""
        if self.rep_id is None:
            return None
        for key in change.references:
            outlet = records.get(key)
            if key[0] is OUTLET and outlet is not None and not self.may_use(outlet):
                return Verdict(
                    "OUTLET_NOT_ASSIGNED",
                    f"{_subject(change)} is for outlet {key[1]}, which is not assigned to this rep. "
                    f"A manager can assign outlet {key[1]} to the rep (repIds), or the record can move "
                    "to one of the rep's outlets.",
                    RefusalAction.FIX_DATA,
                    field="outletId",
                    related=key,
                )
        return None


UNBOUND = Scope(rep_id=None)  # a caller not bound to a rep: staff, integrators, web writes


class OutOfScope(PermissionError):
    """A rep asked for another rep's data."""


def rep_seen(scope_rep: str | None, wanted: str | None) -> str | None:
    """The rep a read about reps' data (flags, events) is narrowed to: a rep sees only itself, and
    asking for another is ``OutOfScope``; callers not bound to a rep see ``wanted`` (None: every rep)."""
    if scope_rep is None:
        return wanted
    if wanted not in (None, scope_rep):
        raise OutOfScope("a rep sees only its own")
    return scope_rep


def _subject(change: Change) -> str:
    return f"{change.record_type.value.replace('_', ' ').title()} {change.record_id}"


def touched_keys(changes: Iterable[Change]) -> set[RecordKey]:
    """The records these changes write or point at."""
    return {key for change in changes for key in (change.key, *change.references)}


def outlets_at_stake(keys: Iterable[RecordKey], records: Mapping[RecordKey, Record], rep_id: str) -> list[str]:
    """Ids of the stored outlets among ``keys`` not assigned to the rep (``assigned_reps``): only
    for those does the scope depend on the rep's other records."""
    return sorted(
        key[1] for key in set(keys) if key[0] is OUTLET and key in records and rep_id not in assigned_reps(records[key])
    )


class ScopeRepository(Protocol):
    async def outlets_referenced_by(
        self, rep_id: str, outlet_ids: list[str], tx: Any = None, besides: RecordKey | None = None
    ) -> set[str]:
        """Of ``outlet_ids``, those that records owned by the rep (``besides`` that one) point at."""
        ...

    async def reps_referencing(self, key: RecordKey, rep_ids: Iterable[str], tx: Any = None) -> set[str]:
        """Of ``rep_ids``, those owning a record that points at ``key``."""
        ...

    async def load_records(self, keys: Iterable[RecordKey], tx: Any = None) -> dict[RecordKey, Record]: ...

    async def find_conflicts(self, rep_id: str | None, status: ConflictStatus | None, limit: int) -> list[Conflict]: ...


class RecordAccess:
    """Reads that answer only what the caller may see, and the scope a push is decided in."""

    def __init__(self, repository: ScopeRepository, access: OutletAccess = OutletAccess.SCOPE) -> None:
        self._repository = repository
        self.access = access

    async def scope_for(
        self, rep_id: str | None, keys: Iterable[RecordKey], records: Mapping[RecordKey, Record], tx: Any = None
    ) -> Scope:
        """The scope around ``keys`` (``records``: the stored ones among them): one query at most,
        none when every outlet among them is assigned to the rep."""
        if rep_id is None or self.access is OutletAccess.ALL:
            return Scope(rep_id, self.access)
        at_stake = outlets_at_stake(keys, records, rep_id)
        referenced = await self._repository.outlets_referenced_by(rep_id, at_stake, tx) if at_stake else set()
        return Scope(rep_id, self.access, frozenset(referenced))

    async def leaving(self, record: Record, rep_ids: tuple[str, ...], tx: Any = None) -> tuple[str, ...]:
        """Of the reps a write of ``record`` takes off it, those whose scope it leaves: an outlet stays
        in the scope of a rep with records pointing at it (one query)."""
        if record.type is not OUTLET or not rep_ids:
            return rep_ids
        staying = await self._repository.reps_referencing(record.key, rep_ids, tx)
        return tuple(rep for rep in rep_ids if rep not in staying)

    async def outlets_left_behind(self, before: Record | None, after: Record, tx: Any = None) -> list[ScopeExit]:
        """An owned record given to another rep takes with it, out of the old owner's scope, the outlets
        only it held there (not assigned to the old owner, not created by its devices, pointed at by
        none of its other records): two queries, only when the owner changes."""
        left = owners_left(before, after)
        if before is None or not left or self.access is OutletAccess.ALL:
            return []
        old_owner = left[0]
        keys = [key for key in references_of(before.type, before.fields) if key[0] is OUTLET]
        outlets = await self._repository.load_records(keys, tx) if keys else {}
        held_by_this = [
            outlet.id
            for outlet in outlets.values()
            if old_owner not in assigned_reps(outlet) and outlet.created_by_rep != old_owner
        ]
        if not held_by_this:
            return []
        still = await self._repository.outlets_referenced_by(old_owner, held_by_this, tx, besides=before.key)
        return [
            ScopeExit(old_owner, (OUTLET, outlet_id), outlets[(OUTLET, outlet_id)].version, after.updated_at)
            for outlet_id in sorted(set(held_by_this) - still)
        ]

    async def record(self, rep_id: str | None, key: RecordKey) -> Record | None:
        """One record, or None when it does not exist or the caller may not see it."""
        current = (await self._repository.load_records([key])).get(key)
        if current is None:
            return None
        scope = await self.scope_for(rep_id, [key], {key: current})
        return scope.shown(current)

    async def conflicts(
        self, rep_id: str | None, wanted_rep: str | None, status: ConflictStatus | None, limit: int
    ) -> list[Conflict]:
        """Conflicts: a rep sees its own only (whichever it asks for); others every rep's, or ``wanted_rep``'s."""
        return await self._repository.find_conflicts(rep_id if rep_id is not None else wanted_rep, status, limit)
