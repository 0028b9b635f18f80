"""A rep's outlet scope (the outlets its own records point at), kept per rep between pulls.

Reading the scope means reading every record the rep owns, which grows with the rep's
history. A phone polling for deltas needs it on every pull, yet it changes only when
one of the rep's own records changes (a new ``seq`` under ``owner``) or a record leaves
the rep (a scope exit). So the scope is kept with the head of the sequence it was read
at, and used again while two index probes (``owner, seq`` and ``rep, seq``, one
document each) find nothing newer: a poll costs three point reads, not the rep's history.
Numbers up to a committed head are all committed, so nothing newer can hide below it.
"""

from __future__ import annotations

from service.domain.record_types import RecordType
from service.store import records, scope_exits, sequence
from service.store.database import Store

OUTLET_PREFIX = f"{RecordType.OUTLET.value}:"


class OutletScopes:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, tuple[int, frozenset[str]]] = {}  # rep -> (head read at, stored outlet ids)

    async def of(self, rep_id: str) -> frozenset[str]:
        """Stored ids (``OUTLET:<id>``) of the outlets the rep's own records point at."""
        known = self._known.get(rep_id)
        if known is not None and not await self._changed_since(rep_id, known[0]):
            return known[1]
        head = await sequence.current(self._store)
        # A projection read, not `distinct`: the embedded store's distinct is ten times slower.
        cursor = self._store.db[records.COLLECTION].find({"owner": rep_id}, {"_id": 0, "refs": 1})
        refs = (ref for document in await cursor.to_list() for ref in document.get("refs", ()))
        scope = frozenset(ref for ref in refs if ref.startswith(OUTLET_PREFIX))
        self._known[rep_id] = (head, scope)
        return scope

    async def _changed_since(self, rep_id: str, head: int) -> bool:
        owned = self._store.db[records.COLLECTION].find({"owner": rep_id, "seq": {"$gt": head}}, {"_id": 1})
        if await owned.sort("seq", 1).limit(1).to_list():
            return True
        return bool(await scope_exits.after(self._store, rep_id, head, 1))
