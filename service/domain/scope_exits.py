"""Records leaving a rep's scope: the rep's devices are told to remove them.

A write that takes a record out of some reps' scope (an OWNED record given a
new ``repId``; for shared records, whatever the outlet scope rule says) names
those reps; the unit of work stores one ``ScopeExit`` per rep with a number
from the global change sequence, so pulls meet it in cursor order, as an
``outOfScope`` envelope without data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from service.domain.records import Record, RecordKey


@dataclass(frozen=True)
class ScopeExit:
    rep_id: str
    key: RecordKey
    version: int  # the record's version that took it out of the rep's scope
    at: datetime
    seq: int = 0  # position in the global change sequence, given at commit


def scope_exits(record: Record, rep_ids: Iterable[str]) -> list[ScopeExit]:
    """``record`` (as written) left the scope of ``rep_ids``."""
    return [ScopeExit(rep_id, record.key, record.version, record.updated_at) for rep_id in sorted(set(rep_ids))]


def owners_left(before: Record | None, after: Record) -> tuple[str, ...]:
    """An OWNED record leaves its previous owner's scope when a write gives it another owner."""
    if before is None or before.owner is None or before.owner == after.owner:
        return ()
    return (before.owner,)
