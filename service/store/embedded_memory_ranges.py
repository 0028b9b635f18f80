"""Ordered reads on the embedded memory engine (``--memory``), pinned to mongoeco 4.11.0.

The memory engine keeps each index as a hash map from a document's index key (a tuple of
BSON equality keys) to the documents holding it, and reads through it only an equality
on a single-field index (memory.py:3021). Everything else reads the whole collection:
a delta pull ``{owner, seq: {$gt}}`` sorted by ``seq`` with a limit, a history page, the
event follower's ``{seq: {$gt}}``, a GridFS file's chunks ``{files_id}`` sorted by ``n``,
and a compound equality such as ``{deviceId, status}``.

This patch gives the engine's index maps an order: each map also keeps, for every prefix
of its key (all fields but the last), the entries whose last field is a number, sorted by
that number (a ``number_runs`` tree, immutable, so copies for transactions and snapshots
share it as they share mongoeco's own persistent maps), and a count of the prefix's other
entries. It keeps them from the first ordered read of that index on: an index no read
ranges over costs no more to write. A read then takes its candidates from one index:

- equality on all but the last field of an index (several values: several prefixes), then
  maybe a numeric range on its last field, or a sort on it ascending: each prefix's run, in
  order, between the bounds, if the prefix
  holds no entry that is not a number (mongoeco compares values of different types in
  BSON's order, so a string matches ``$gt: 5`` and a null ``$lt: 2``);
- equality on every field of an index: its buckets (a single-field index's hold each element
  of an array, a compound one's every combination: ``embedded_patches`` M2);
- ``$or`` of those (or of ``_id`` lookups): their union.

The engine then checks the whole filter on each candidate and sorts them, as it does on a
scan, so the candidates only need to hold every match. When the filter is exactly the
index's terms and the read is unsorted or sorted by the index, only ``skip + limit``
candidates are read. MongoDB's rules for arrays differ (any element matches; an array
sorts by its smallest element), so an index that ever held an array at one of its fields
(or that names a dotted path) is never used here.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice, product
from typing import Any

from service.store import number_runs
from service.store.embedded_index_plans import PlainTerms, plain_terms
from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}
_FIND: contextvars.ContextVar[Any] = contextvars.ContextVar("fieldsync_memory_find", default=None)


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch_memory)


def _number(key_part: Any) -> Decimal | None:
    """The number of a BSON equality key (``("number", Decimal)``), or None (NaN, infinities, any other type)."""
    if type(key_part) is tuple and len(key_part) == 2 and key_part[0] == "number" and type(key_part[1]) is Decimal:
        return key_part[1]
    return None


def runs_of(buckets: Any) -> tuple[dict[tuple[Any, ...], number_runs.Node | None], dict[tuple[Any, ...], int], bool]:
    """From an index map's buckets: each prefix's run, each prefix's count of other entries, and
    whether a document is in several buckets (an array at an indexed field)."""
    entries: dict[tuple[Any, ...], list[tuple[Decimal, Any]]] = {}
    others: dict[tuple[Any, ...], int] = {}
    seen: set[Any] = set()
    arrays = False
    for key, storage_keys in buckets.items():
        prefix, number = key[:-1], _number(key[-1])
        for storage_key in storage_keys:
            arrays = arrays or storage_key in seen
            seen.add(storage_key)
            if number is None:
                others[prefix] = others.get(prefix, 0) + 1
            else:
                entries.setdefault(prefix, []).append((number, storage_key))
    return {prefix: number_runs.build(pairs) for prefix, pairs in entries.items()}, others, arrays


def _ordered_index_map_class(base: type) -> type:
    class OrderedIndexMap(base):  # type: ignore[valid-type,misc]
        """mongoeco's index map, plus, from the first ordered read on, each key prefix's numeric last
        keys in order and a count of the prefix's other entries; and whether the index held an array.

        A transaction writes on copies of the maps and its commit publishes them, so a copy made
        before the first ordered read learns of it through ``_wanted``, shared by every copy of a
        map, and keeps the order from its next write on: else each commit would publish a map
        without it, and each read would sort the index again."""

        def __init__(self, values: Any = ()) -> None:
            self._runs: Any = None  # HashTrieMap prefix -> number_runs.Node once the order is kept
            self._others: Any = None  # HashTrieMap prefix -> count of entries whose last key is not a number
            self._wanted = [False]  # an ordered read asked this map or a copy of it
            self.arrays = False
            super().__init__(values)

        def ordered(self) -> bool:
            """Keep the order from now on; False if the index held an array: then it gives no order."""
            self._wanted[0] = True
            self._keep_order()
            return not self.arrays

        def _keep_order(self) -> bool:
            """Whether the order is kept, once wanted (built from the buckets the first time)."""
            if self._runs is None and self._wanted[0]:
                from rpds import HashTrieMap

                runs, others, arrays = runs_of(self)
                self._runs, self._others = HashTrieMap(runs), HashTrieMap(others)
                self.arrays = self.arrays or arrays
            return self._runs is not None

        def run(self, prefix: tuple[Any, ...]) -> number_runs.Node | None:
            return self._runs.get(prefix)

        def others(self, prefix: tuple[Any, ...]) -> int:
            return self._others.get(prefix, 0)

        def _enter(self, key: tuple[Any, ...], storage_key: Any, *, present: bool) -> None:
            prefix, number = key[:-1], _number(key[-1])
            if number is not None:
                run = self._runs.get(prefix)
                run = (
                    number_runs.insert(run, number, storage_key)
                    if present
                    else number_runs.remove(run, number, storage_key)
                )
                self._runs = self._runs.insert(prefix, run) if run is not None else self._runs.discard(prefix)
                return
            count = self._others.get(prefix, 0) + (1 if present else -1)
            self._others = self._others.insert(prefix, count) if count else self._others.discard(prefix)

        def add(self, key: tuple[Any, ...], storage_key: Any, *, ordinal: int | None = None) -> None:
            if not self._keep_order():
                super().add(key, storage_key, ordinal=ordinal)
                return
            bucket = self.get(key)
            if bucket is None or storage_key not in bucket:
                super().add(key, storage_key, ordinal=ordinal)
                self._enter(key, storage_key, present=True)

        def discard(self, key: tuple[Any, ...], storage_key: Any) -> None:
            if not self._keep_order():
                super().discard(key, storage_key)
                return
            bucket = self.get(key)
            if bucket is not None and storage_key in bucket:
                super().discard(key, storage_key)
                self._enter(key, storage_key, present=False)

        def _leave_bucket(self, key: tuple[Any, ...]) -> None:
            if self._keep_order():
                for storage_key in self.get(key, ()):
                    self._enter(key, storage_key, present=False)

        def __delitem__(self, key: tuple[Any, ...]) -> None:
            self._leave_bucket(key)
            super().__delitem__(key)

        def pop(self, key: tuple[Any, ...], *default: Any) -> Any:
            self._leave_bucket(key)
            return super().pop(key, *default)

        def clear(self) -> None:
            super().clear()
            self._runs = self._others = None

        def _share_order(self, result: Any) -> Any:
            result._runs, result._others, result.arrays = self._runs, self._others, self.arrays
            result._wanted = self._wanted
            return result

        def copy(self) -> Any:
            return self._share_order(super().copy())

        def __deepcopy__(self, memo: dict[int, object]) -> Any:
            return self._share_order(super().__deepcopy__(memo))  # immutable: numbers and storage keys

        def _snapshot_state(self) -> Any:
            return super()._snapshot_state(), self._runs, self._others

        def _restore_state(self, state: Any) -> None:
            base, self._runs, self._others = state
            super()._restore_state(base)  # ``arrays`` stays set: it only ever makes reads plan as upstream

    return OrderedIndexMap


def _bounds(terms: PlainTerms, field: str) -> tuple[number_runs.Bound | None, number_runs.Bound | None] | None:
    """The range on ``field`` as (low, high), each (number, inclusive) or None; None unless every bound is an int."""
    low: number_runs.Bound | None = None
    high: number_runs.Bound | None = None
    for operator, value in terms.ranges.get(field, ()):
        if type(value) is not int:
            return None
        bound = (Decimal(value), "=" in operator)
        if operator.startswith(">"):
            low = bound if low is None or (bound[0], not bound[1]) > (low[0], not low[1]) else low
        else:
            high = bound if high is None or (bound[0], bound[1]) < (high[0], high[1]) else high
    return low, high


class _Branch:
    """One branch's candidates: storage keys, the index they come from, whether in an order the read
    accepts (any when unsorted), whether exactly its matches."""

    def __init__(self, keys: Iterator[Any], source: str, *, ordered: bool, exact: bool) -> None:
        self.keys, self.source, self.ordered, self.exact = keys, source, ordered, exact


def _usable(index: Any, index_map: Any) -> bool:
    return (
        hasattr(index_map, "ordered")
        and not index.get("sparse")
        and not index.get("hidden")
        and index.get("collation") is None
        and index.get("partial_filter_expression") is None
        and all(direction == 1 and "." not in field for field, direction in index["key"])
    )


def _branch(engine: Any, plan: Any, qp: Any, sort: Any, indexes: Any, index_data: Any) -> _Branch | None:
    terms = plain_terms(plan, qp)
    if terms is None:
        return None
    if (ids := terms.equal.get("_id")) is not None:
        keys = iter(dict.fromkeys(engine._storage_key(v) for v in ids))
        return _Branch(keys, "_id", ordered=not sort, exact=len(terms.equal) == 1 and not terms.ranges)
    if len(terms.ranges) > 1:
        return None
    range_field = next(iter(terms.ranges), None)
    sort_field = sort[0][0] if sort and len(sort) == 1 and sort[0][1] == 1 else None
    ordered_field = range_field or sort_field
    best: tuple[tuple[int, bool], _Branch] | None = None
    for index in indexes:
        index_map = index_data.get(index["name"])
        if not _usable(index, index_map):
            continue
        fields = list(index["fields"])
        equal = {field: terms.equal[field] for field in fields if field in terms.equal}
        last = fields[-1]
        prefix_only = len(equal) == len(fields) - 1 and last not in equal and (equal or last == ordered_field)
        if not prefix_only and len(equal) < len(fields):
            continue
        # index keys (every field equal) or key prefixes (all but the last): one per combination of values
        looked_up = [tuple(engine._index_equality_key(v) for v in values) for values in product(*equal.values())]
        if prefix_only:
            bounds = _bounds(terms, last) if last == range_field else (None, None)
            if not index_map.ordered() or bounds is None or any(index_map.others(p) for p in looked_up):
                continue  # mongoeco compares other types in BSON's order: "7" > 5, null < 2
            exact = len(equal) == len(terms.equal) and range_field in (None, last)
            ordered = not sort or (last == sort_field and len(looked_up) == 1)
            found = _Branch(_run_keys(index_map, looked_up, bounds), index["name"], ordered=ordered, exact=exact)
        else:
            exact = len(equal) == len(terms.equal) and not terms.ranges
            found = _Branch(_bucket_keys(index_map, looked_up), index["name"], ordered=not sort, exact=exact)
        served = (len(equal), last == ordered_field)  # equalities first: they bound the candidates
        if best is None or served > best[0]:
            best = (served, found)
    return None if best is None else best[1]


def _run_keys(index_map: Any, prefixes: list[tuple[Any, ...]], bounds: Any) -> Iterator[Any]:
    for prefix in prefixes:
        yield from number_runs.keys(index_map.run(prefix), *bounds)


def _bucket_keys(index_map: Any, keys: list[tuple[Any, ...]]) -> Iterator[Any]:
    for key in keys:
        yield from index_map.get(key, ())


def _branches(engine: Any, query_plan: Any, sort: Any, indexes: Any, index_data: Any) -> list[_Branch] | None:
    from mongoeco.core import query_plan as qp

    branches = query_plan.clauses if isinstance(query_plan, qp.OrCondition) else (query_plan,)
    if len(branches) > 1 and sort:
        return None
    found = [_branch(engine, branch, qp, sort, indexes, index_data) for branch in branches]
    return None if any(branch is None for branch in found) else found  # type: ignore[return-value]


def _stops_at_limit(branches: list[_Branch], find: Any) -> bool:
    return len(branches) == 1 and branches[0].exact and branches[0].ordered and bool(find.limit)


def candidate_keys(
    engine: Any, coll: Any, query_plan: Any, find: Any, indexes: Any, index_data: Any
) -> list[Any] | None:
    """The storage keys of ``coll`` a read must look at, from an index, or None to leave the read to mongoeco.

    ``find``: the read's semantics when it is a find (its sort, skip and limit), else None."""
    branches = _branches(engine, query_plan, find.sort if find is not None else None, indexes, index_data)
    if branches is None:
        return None
    keys = _unique(key for branch in branches for key in branch.keys if key in coll)
    if find is not None and _stops_at_limit(branches, find):
        return list(islice(keys, find.skip + find.limit))  # the generators stop there
    return list(keys)


def candidate_sources(engine: Any, db_name: str, coll_name: str, find: Any) -> dict[str, Any]:
    """What a find reads, for ``explain``: each branch's index (``_id``, an index name, ``scan``) and
    whether it stops at the find's limit."""
    indexes = engine._indexes.get(db_name, {}).get(coll_name, [])
    index_data = engine._index_data.get(db_name, {}).get(coll_name, {})
    branches = _branches(engine, find.query_plan, find.sort, indexes, index_data)
    if branches is not None:
        return {"indexes": [branch.source for branch in branches], "stops_at_limit": _stops_at_limit(branches, find)}
    plan = find.query_plan
    if engine._direct_id_lookup_from_plan(plan) is not None:
        return {"indexes": ["_id"], "stops_at_limit": False}
    own = engine._indexed_candidate_storage_keys_for_plan_locked(
        indexes, index_data, plan, dialect=find.dialect, collation=find.collation
    )
    return {"indexes": ["scan" if own is None else "equality"], "stops_at_limit": False}


def _unique(keys: Iterator[Any]) -> Iterator[Any]:
    seen = set()
    for key in keys:
        if key not in seen:
            seen.add(key)
            yield key


def _note_arrays(
    engine: Any, db_name: str, coll_name: str, documents: Any, index_data_view: Any, indexes_view: Any
) -> None:
    """Mark each ordered index of the collection that one of ``documents`` holds an array for."""
    indexes = (engine._indexes if indexes_view is None else indexes_view).get(db_name, {}).get(coll_name, [])
    maps = (engine._index_data if index_data_view is None else index_data_view).get(db_name, {}).get(coll_name, {})
    for index in indexes:
        index_map = maps.get(index["name"])
        if getattr(index_map, "_runs", None) is not None and not index_map.arrays:
            index_map.arrays = any(
                "." in field or isinstance(document.get(field), list)
                for document in documents
                for field in index["fields"]
            )


def _patch_memory() -> None:
    from mongoeco.engines import memory

    engine_cls = memory.MemoryEngine
    _ORIGINALS["MemoryIndexMap"] = memory.MemoryIndexMap
    memory.MemoryIndexMap = _ordered_index_map_class(memory.MemoryIndexMap)  # type: ignore[misc,assignment]
    original_scan = _ORIGINALS["scan_find_semantics"] = engine_cls.__dict__["scan_find_semantics"]
    original_candidates = _ORIGINALS["candidates"] = engine_cls.__dict__["_candidate_items_for_plan_locked"]
    original_update = _ORIGINALS["update_indexes"] = engine_cls.__dict__["_update_indexes_locked"]
    original_rebuild = _ORIGINALS["rebuild_index"] = engine_cls.__dict__["_rebuild_index_data_locked"]
    original_explain = _ORIGINALS["explain"] = engine_cls.__dict__["explain_find_semantics"]

    def scan_find_semantics(self, db_name, coll_name, semantics, *, context=None):
        _FIND.set(semantics)  # its first step plans the candidates, in this task: they may stop at its limit
        return original_scan(self, db_name, coll_name, semantics, context=context)

    def _candidate_items_for_plan_locked(self, coll, query_plan, *, collation, indexes, index_data, **kwargs):
        if collation is None and isinstance(coll, memory.MemoryCollection):
            find = _FIND.get()
            if find is not None and find.query_plan is not query_plan:
                find = None
            keys = candidate_keys(self, coll, query_plan, find, indexes, index_data)
            if keys is not None:
                return [(key, coll[key]) for key in keys]
        return original_candidates(
            self, coll, query_plan, collation=collation, indexes=indexes, index_data=index_data, **kwargs
        )

    def _update_indexes_locked(self, db_name, coll_name, storage_key, document, *, action="insert", **views):
        original_update(self, db_name, coll_name, storage_key, document, action=action, **views)
        if action == "insert":
            _note_arrays(self, db_name, coll_name, (document,), views.get("index_data_view"), views.get("indexes_view"))

    def _rebuild_index_data_locked(self, db_name, coll_name, index, *, index_data_view=None, storage_view=None):
        original_rebuild(self, db_name, coll_name, index, index_data_view=index_data_view, storage_view=storage_view)
        stored = (self._storage if storage_view is None else storage_view).get(db_name, {}).get(coll_name, {})
        documents = (self._borrow_storage_document(data) for data in stored.values())
        _note_arrays(self, db_name, coll_name, documents, index_data_view, {db_name: {coll_name: [index]}})

    async def explain_find_semantics(self, db_name, coll_name, semantics, *, context=None):
        explanation = await original_explain(self, db_name, coll_name, semantics, context=context)
        details = explanation.details if isinstance(explanation.details, dict) else {}
        sources = candidate_sources(self, db_name, coll_name, semantics)
        return dataclasses.replace(explanation, details={**details, "candidates": sources})

    engine_cls.explain_find_semantics = explain_find_semantics  # type: ignore[method-assign]
    engine_cls.scan_find_semantics = scan_find_semantics  # type: ignore[method-assign]
    engine_cls._candidate_items_for_plan_locked = _candidate_items_for_plan_locked  # type: ignore[method-assign]
    engine_cls._update_indexes_locked = _update_indexes_locked  # type: ignore[method-assign]
    engine_cls._rebuild_index_data_locked = _rebuild_index_data_locked  # type: ignore[method-assign]
