"""A rep's outlet scope (the outlets its own records point at), kept per rep between pulls.

Reading the scope means reading every record the rep owns, which grows with the rep's
history. A phone polling for deltas needs it on every pull, yet it changes only when
one of the rep's own records changes (a new ``seq`` under ``owner``) or a record leaves
the rep (a scope exit). So the scope is kept with the head of the sequence it was read
at. The caller reads the head anyway (a pull's ceiling) and passes it: while it has not
moved past the kept one nothing committed since, and the scope is used as it is without a
store command; once it has, the rep's records written since (``owner, seq``) and one probe
of its scope exits (``rep, seq``) tell what changed. Numbers up to a committed head are all
committed, so nothing newer can hide below it.

When those records are all new (a phone out in the field creates visits and orders all
day) and none left the rep, the scope is the kept one plus what they point at, without
reading the rep's whole history. A new version of an existing record may point elsewhere
than its last one did, which only a whole read tells, and so may a record that left the
rep (a scope exit): then the scope is read again whole.
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
        if known is not None and known[0] >= head:
            return known[1]
        if known is not None and (added := await self._added_since(rep_id, known[0])) is not None:
            scope = known[1] | added
        else:
            # A projection read, not `distinct`: the embedded store's distinct is ten times slower.
            cursor = self._store.db[records.COLLECTION].find({"owner": rep_id}, {"_id": 0, "refs": 1})
            scope = _outlets(await cursor.to_list())
        self._known[rep_id] = (head, scope)
        return scope

    async def _added_since(self, rep_id: str, head: int) -> frozenset[str] | None:
        """The outlets the rep's records written after ``head`` point at, when all of them are new records
        and none left the rep; None otherwise."""
        query = {"owner": rep_id, "seq": {"$gt": head}}
        written = self._store.db[records.COLLECTION].find(query, {"_id": 0, "refs": 1, "version": 1}).sort("seq", 1)
        documents = await written.to_list()
        if any(document["version"] != 1 for document in documents):
            return None
        if await scope_exits.after(self._store, rep_id, head, 1):
            return None
        return _outlets(documents)


def _outlets(documents: list[dict]) -> frozenset[str]:
    return frozenset(ref for document in documents for ref in document.get("refs", ()) if ref.startswith(OUTLET_PREFIX))
