"""A rep's outlet scope (the outlets its own records point at), kept per rep between pulls.

Reading the scope means reading every record the rep owns, which grows with the rep's
history. A phone polling for deltas needs it on every pull, yet it changes only when
one of the rep's own records changes (a new ``seq`` under ``owner``) or a record leaves
the rep (a scope exit). So the scope is kept with the head of the sequence it was read
at. The caller reads the head anyway (a pull's ceiling) and passes it: while it has not
moved past the kept one nothing committed since, and the scope is used as it is without a
store command; once it has, two index probes (``owner, seq`` and ``rep, seq``, one document
each) find whether anything of the rep's is newer. Numbers up to a committed head are all
committed, so nothing newer can hide below it.
"""

from __future__ import annotations

from service.domain.record_types import RecordType
from service.store import records, scope_exits
from service.store.database import Store

OUTLET_PREFIX = f"{RecordType.OUTLET.value}:"


class OutletScopes:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, tuple[int, frozenset[str]]] = {}  # rep -> (head read at, stored outlet ids)

    async def of(self, rep_id: str, head: int) -> frozenset[str]:
        """Stored ids (``OUTLET:<id>``) of the outlets the rep's own records point at; ``head``: the
        sequence's head, read just before."""
        known = self._known.get(rep_id)
        if known is not None and (known[0] >= head or not await self._changed_since(rep_id, known[0])):
            self._known[rep_id] = (max(known[0], head), known[1])
            return known[1]
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
