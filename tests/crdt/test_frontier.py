"""A field's frontier kept write by write is the one the rule defines over all of them at once."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdt.field_rule import SERVER_CLIENT, Frontier, Saw, Stamp, Write, merged, seen_at_version, seen_by_item


def by_definition(frontier: Frontier, write: Write, saw: Saw) -> Frontier:
    """``merged`` as the rule states it: drop what the write saw, then every write that loses to one
    which whoever sees it also sees, looked at over every pair."""
    kept = [w for w in frontier if not saw(w)]
    if any(w.order == write.order and w.item == write.item for w in kept):
        return tuple(kept)
    kept.append(write)
    return tuple(w for w in kept if not any(o.order > w.order and o.implies(w) for o in kept))


@st.composite
def histories(draw: Any) -> list[tuple[Write, Saw]]:
    """Writes as the server takes them in: patches made on some version, and Yjs items of three
    devices written on some item they saw (one of theirs, another device's, or the server's)."""
    clocks = {1: 0, 2: 0, 3: 0}
    items: list[tuple[int, int]] = []
    horizon, history = 0, []
    for version in range(1, draw(st.integers(1, 40)) + 1):
        stamp = Stamp(draw(st.integers(0, 6)), draw(st.sampled_from(("a", "b", "c"))))
        value = draw(st.integers(0, 3))
        if draw(st.booleans()):
            base = draw(st.one_of(st.none(), st.integers(0, version - 1)))
            history.append((Write(value, stamp, version, horizon), seen_at_version(base)))
            horizon += draw(st.integers(0, 1))  # the winner written back as a server edit, or not
            continue
        client = draw(st.sampled_from((1, 2, 3)))
        item = (client, clocks[client])
        clocks[client] += 1
        origin = draw(
            st.one_of(st.none(), st.sampled_from(items) if items else st.none(), st.just((SERVER_CLIENT, horizon)))
        )
        history.append((Write(value, stamp, version, horizon, item), seen_by_item(item, origin)))
        items.append(item)
    return history


@settings(max_examples=400, deadline=None, database=None)
@given(histories())
def test_a_frontier_kept_write_by_write_is_the_rules(history: list[tuple[Write, Saw]]) -> None:
    frontier: Frontier = ()
    for write, saw in history:
        expected = by_definition(frontier, write, saw)
        frontier = merged(frontier, write, saw)
        assert frontier == expected


def test_writers_that_never_saw_each_other_cost_a_look_each_not_a_pair_each() -> None:
    """A thousand phones, each writing a field once from nothing: each write looks at the frontier
    once (it held 999 writes at the end), instead of at every pair of it."""
    looks = 0

    class Counted(Write):
        def implies(self, other: Write) -> bool:
            nonlocal looks
            looks += 1
            return super().implies(other)

    frontier: Frontier = ()
    for n in range(1000):
        write = Counted(n, Stamp(n, f"phone-{n}"), n + 1, 0, (n + 10, 0))
        frontier = merged(frontier, write, seen_by_item((n + 10, 0), None))
    assert len(frontier) == 1000
    assert looks <= 1000 * 1001 // 2  # at most one look per write of the frontier, per write that came
