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
        case ("copy",):
            return index_map.copy()
        case ("deepcopy",):
            return deepcopy(index_map)
        case ("clear",):
            index_map.clear()
    return index_map


@settings(deadline=None)
@given(STEPS)
def test_the_compact_map_answers_as_mongoecos_own(steps: list[tuple[Any, ...]]) -> None:
    upstream, compact = MemoryIndexMap(), Compact()
    upstream_saved: list[Any] = []
    compact_saved: list[Any] = []
    for move in steps:
        upstream = step(upstream, upstream_saved, move)
        compact = step(compact, compact_saved, move)
        assert answers(compact) == answers(upstream), move
    pops = [s for s in upstream_saved if not isinstance(s, tuple)]
    assert [s for s in compact_saved if not isinstance(s, tuple)] == pops


def test_a_copy_shares_the_map_and_writes_apart() -> None:
    original = Compact({(("string", "a"),): ["k1"]})
    copied = original.copy()
    copied.add((("string", "a"),), "k2")
    assert sorted(original[(("string", "a"),)]) == ["k1"]
    assert sorted(copied[(("string", "a"),)]) == ["k1", "k2"]


def test_every_upstream_method_that_touches_the_three_maps_is_replaced() -> None:
    """mongoeco's index map keeps three maps (what the patch merges); a method of a later version
    that reads or writes them directly would miss the merged one: re-check the patch then."""
    assert mongoeco.__version__ == PINNED_VERSION
    touching = {
        name
        for name, member in vars(MemoryIndexMap).items()
        if inspect.isfunction(member) and any(field in inspect.getsource(member) for field in UPSTREAM_MAPS)
    }
    assert touching == {
        "__init__",
        "__contains__",
        "__getitem__",
        "__setitem__",
        "__delitem__",
        "__iter__",
        "__len__",
        "get",
        "clear",
        "pop",
        "copy",
        "__deepcopy__",
        "add",
        "discard",
        "ordinal_for",
        "ordered_storage_keys",
        "_snapshot_state",
        "_restore_state",
    }
    assert touching <= set(vars(Compact))
    upstream = MemoryIndexMap()
    upstream.add((("string", "a"),), "k1")
    assert all(len(getattr(upstream, field)) == 1 for field in UPSTREAM_MAPS)  # an add inserts into all three
    compact = Compact()
    compact.add((("string", "a"),), "k1")
    assert all(len(getattr(compact, field)) == 0 for field in UPSTREAM_MAPS)
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
        case ("copy",):
            return collection.copy()
        case ("deepcopy",):
            return deepcopy(collection)
        case ("clear",):
            collection.clear()
    return collection


@settings(deadline=None)
@given(ROW_STEPS)
def test_the_compact_collection_answers_as_mongoecos_own(steps: list[tuple[Any, ...]]) -> None:
    upstream, compact = MemoryCollection(), CompactCollection()
    upstream_saved: list[Any] = []
    compact_saved: list[Any] = []
    for move in steps:
        upstream = row_step(upstream, upstream_saved, move)
        compact = row_step(compact, compact_saved, move)
        assert rows(compact) == rows(upstream), move


def test_every_upstream_collection_method_that_touches_the_three_maps_is_replaced() -> None:
    assert mongoeco.__version__ == PINNED_VERSION
    touching = {
        name
        for name, member in vars(MemoryCollection).items()
        if inspect.isfunction(member) and any(field in inspect.getsource(member) for field in UPSTREAM_ROWS)
    }
    assert touching == {
        "__init__",
        "__contains__",
        "__getitem__",
        "__setitem__",
        "replace_key",
        "__delitem__",
        "__len__",
        "get",
        "clear",
        "copy",
        "_snapshot_state",
        "_restore_state",
        "ordered_keys",
        "ordinal_for",
    }
    assert touching <= set(vars(CompactCollection))
    upstream = MemoryCollection()
    upstream["d1"] = {"_id": "d1"}
    assert all(len(getattr(upstream, field)) == 1 for field in UPSTREAM_ROWS)  # a new document: all three
    compact = CompactCollection()
    compact["d1"] = {"_id": "d1"}
    assert all(len(getattr(compact, field)) == 0 for field in UPSTREAM_ROWS)
    assert compact._rows["d1"] == ({"_id": "d1"}, 0, 0, 0)


def test_the_patch_is_pinned_to_one_mongoeco_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "0.0.0")
    assert embedded_memory_maps.apply() is False
