"""service.store.embedded_memory_maps: the memory engine's index map keeps each key's bucket,
ordinals and order in one persistent map, and answers every question as mongoeco's own does
(this process does not apply the patch: both classes are compared side by side)."""

from __future__ import annotations

import inspect
from copy import deepcopy
from typing import Any

import mongoeco
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mongoeco.engines._memory_collection import MemoryCollection, MemoryIndexMap

from service.store import embedded_memory_maps
from service.store.embedded_pin import PINNED_VERSION

Compact = embedded_memory_maps._compact_index_map_class(MemoryIndexMap)
CompactCollection = embedded_memory_maps._compact_collection_class(MemoryCollection)
UPSTREAM_MAPS = ("_buckets", "_bucket_ordinals", "_bucket_order_roots")
UPSTREAM_ROWS = ("_values", "_ordinals", "_locations")

KEYS = st.sampled_from([(("string", "a"),), (("string", "b"),), (("number", 1),)])
MEMBERS = st.sampled_from(["k1", "k2", "k3", "k4"])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS, MEMBERS, st.one_of(st.none(), st.integers(0, 50))),
        st.tuples(st.just("discard"), KEYS, MEMBERS),
        st.tuples(st.just("pop"), KEYS),
        st.tuples(st.just("del"), KEYS),
        st.tuples(st.just("set"), KEYS, st.lists(MEMBERS, max_size=3)),
        st.tuples(st.just("snapshot")),
        st.tuples(st.just("restore")),
        st.tuples(st.just("copy")),
        st.tuples(st.just("deepcopy")),
        st.tuples(st.just("clear")),
    ),
    max_size=60,
)


def answers(index_map: Any) -> Any:
    """Everything mongoeco asks an index map about its buckets."""
    return (
        len(index_map),
        sorted((key, sorted(bucket)) for key, bucket in index_map.items()),
        {key: index_map.ordered_storage_keys(key) for key in index_map},
        {key: index_map.ordered_storage_keys(key, limit=1) for key in index_map},
        {(key, m): index_map.ordinal_for(key, m) for key in index_map for m in ("k1", "k2", "k3", "k4")},
        index_map.ordinal_for(("string", "absent"), "k1"),
        index_map.get(("string", "absent"), "none"),
    )


def step(index_map: Any, saved: list[Any], move: tuple[Any, ...]) -> Any:
    """Apply one step; return the map to go on with (a copy goes on from the copy)."""
    match move:
        case ("add", key, member, ordinal):
            index_map.add(key, member, ordinal=ordinal)
        case ("discard", key, member):
            index_map.discard(key, member)
        case ("pop", key):
            found = index_map.pop(key, None)
            saved.append(sorted(found) if found is not None else None)
        case ("del", key):
            if key in index_map:
                del index_map[key]
        case ("set", key, members):
            index_map[key] = members
        case ("snapshot",):
            saved.append(index_map._snapshot_state())
        case ("restore",):
            states = [s for s in saved if isinstance(s, tuple)]
            if states:
                index_map._restore_state(states[-1])
        case _:
            return went_on(index_map, move)
    return index_map


def went_on(structure: Any, move: tuple[Any, ...]) -> Any:
    """The moves both structures take alike (copy, deep copy, clear): the structure to go on with."""
    match move:
        case ("copy",):
            return structure.copy()
        case ("deepcopy",):
            return deepcopy(structure)
        case ("clear",):
            structure.clear()
    return structure


def replay(upstream: Any, compact: Any, steps: list[tuple[Any, ...]], step: Any, answer: Any) -> list[list[Any]]:
    """Both through the same steps, answering alike after each; what each saved on the way."""
    saved: list[list[Any]] = [[], []]
    for move in steps:
        upstream, compact = step(upstream, saved[0], move), step(compact, saved[1], move)
        assert answer(compact) == answer(upstream), move
    return saved


@settings(deadline=None)
@given(STEPS)
def test_the_compact_map_answers_as_mongoecos_own(steps: list[tuple[Any, ...]]) -> None:
    upstream_saved, compact_saved = replay(MemoryIndexMap(), Compact(), steps, step, answers)
    pops = [s for s in upstream_saved if not isinstance(s, tuple)]
    assert [s for s in compact_saved if not isinstance(s, tuple)] == pops


def test_a_copy_shares_the_map_and_writes_apart() -> None:
    original = Compact({(("string", "a"),): ["k1"]})
    copied = original.copy()
    copied.add((("string", "a"),), "k2")
    assert sorted(original[(("string", "a"),)]) == ["k1"]
    assert sorted(copied[(("string", "a"),)]) == ["k1", "k2"]


def methods_touching(upstream: type, fields: tuple[str, ...]) -> set[str]:
    """The methods of the pinned mongoeco class that read or write any of ``fields`` directly."""
    assert mongoeco.__version__ == PINNED_VERSION
    return {
        name
        for name, member in vars(upstream).items()
        if inspect.isfunction(member) and any(field in inspect.getsource(member) for field in fields)
    }


def fills_three_maps_not_one(upstream: Any, compact: Any, fields: tuple[str, ...], write: Any) -> None:
    """One new entry goes into each of mongoeco's three maps; the patch's class leaves them empty (its one
    map holds it)."""
    write(upstream)
    write(compact)
    assert all(len(getattr(upstream, field)) == 1 for field in fields)
    assert all(len(getattr(compact, field)) == 0 for field in fields)


def test_every_upstream_method_that_touches_the_three_maps_is_replaced() -> None:
    """mongoeco's index map keeps three maps (what the patch merges); a method of a later version
    that reads or writes them directly would miss the merged one: re-check the patch then."""
    touching = methods_touching(MemoryIndexMap, UPSTREAM_MAPS)
    assert {"add", "ordered_storage_keys"} <= touching <= set(vars(Compact))  # each one is replaced
    compact = Compact()
    fills_three_maps_not_one(MemoryIndexMap(), compact, UPSTREAM_MAPS, lambda m: m.add((("string", "a"),), "k1"))
    assert len(compact._entries) == 1


ROW_KEYS = st.sampled_from([f"d{n}" for n in range(12)])
ROW_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), ROW_KEYS, st.integers(0, 9)),
        st.tuples(st.just("del"), ROW_KEYS),
        st.tuples(st.just("rekey"), ROW_KEYS, ROW_KEYS),
        st.tuples(st.just("popitem")),
        st.tuples(st.just("snapshot")),
        st.tuples(st.just("restore")),
        st.tuples(st.just("copy")),
        st.tuples(st.just("deepcopy")),
        st.tuples(st.just("clear")),
    ),
    max_size=300,  # over two order chunks (128 each), through their compaction and unlinking
)


def rows(collection: Any) -> Any:
    """Everything mongoeco asks a collection: its documents in order, their ordinals, look-ups."""
    keys = [f"d{n}" for n in range(12)]
    return (
        list(collection.items()),
        len(collection),
        {key: (key in collection, collection.get(key, "none")) for key in keys},
        {key: collection[key] for key in keys if key in collection},
        {key: collection.ordinal_for(key) for key in keys if key in collection},
        collection.ordered_keys(reversed(keys)),
        collection.ordered_keys(keys, limit=3),
    )


def row_step(collection: Any, saved: list[Any], move: tuple[Any, ...]) -> Any:
    match move:
        case ("set", key, value):
            collection[key] = value
        case ("del", key):
            if key in collection:
                del collection[key]
        case ("rekey", key, replacement):
            if key in collection and replacement not in collection:
                collection.replace_key(key, replacement)
        case ("popitem",):
            if len(collection):
                collection.popitem()
        case ("snapshot",):
            saved.append(collection._snapshot_state())
        case ("restore",):
            if saved:
                collection._restore_state(saved[-1])
        case _:
            return went_on(collection, move)
    return collection


@settings(deadline=None)
@given(ROW_STEPS)
def test_the_compact_collection_answers_as_mongoecos_own(steps: list[tuple[Any, ...]]) -> None:
    replay(MemoryCollection(), CompactCollection(), steps, row_step, rows)


def test_every_upstream_collection_method_that_touches_the_three_maps_is_replaced() -> None:
    touching = methods_touching(MemoryCollection, UPSTREAM_ROWS)
    assert {"__setitem__", "ordered_keys"} <= touching <= set(vars(CompactCollection))
    compact = CompactCollection()
    fills_three_maps_not_one(MemoryCollection(), compact, UPSTREAM_ROWS, lambda c: c.__setitem__("d1", {"_id": "d1"}))
    assert compact._rows["d1"] == ({"_id": "d1"}, 0, 0, 0)


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_memory_maps.apply() is False
