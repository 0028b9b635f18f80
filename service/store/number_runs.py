"""A run: an immutable B+ tree of (number, storage key) entries sorted by number.

Immutable so that copies of the index map holding it (a transaction's view, a snapshot for
rollback) share it for free, as they share mongoeco's own persistent maps: inserting or
removing an entry builds a new path of at most ``_FANOUT``-wide nodes from root to leaf
and shares the rest (4 levels at a million entries). Entries with equal numbers keep
their insertion order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

_FANOUT = 64  # entries of a leaf, children of a node; a node of more splits in two
# Tuples are spliced by concatenation (``t[:i] + (x,) + t[i:]``): ~40% faster than unpacking.

# (each entry's number, or each child's first number; the storage keys, or the children; leaf?)
type Node = tuple[tuple[Decimal, ...], tuple[Any, ...], bool]
type Bound = tuple[Decimal, bool]  # a number, and whether it is inclusive


def _node(numbers: tuple[Decimal, ...], items: tuple[Any, ...], leaf: bool) -> tuple[Node, ...]:
    """The node, or two halves if it is over ``_FANOUT`` wide."""
    if len(items) <= _FANOUT:
        return ((numbers, items, leaf),)
    half = len(items) // 2
    return (numbers[:half], items[:half], leaf), (numbers[half:], items[half:], leaf)


def _insert(node: Node, number: Decimal, key: Any) -> tuple[Node, ...]:
    numbers, items, leaf = node
    if leaf:
        i = bisect.bisect_right(numbers, number)
        return _node(numbers[:i] + (number,) + numbers[i:], items[:i] + (key,) + items[i:], leaf)  # noqa: RUF005
    at = max(bisect.bisect_right(numbers, number) - 1, 0)
    parts = _insert(items[at], number, key)
    firsts = tuple(part[0][0] for part in parts)
    return _node(numbers[:at] + firsts + numbers[at + 1 :], items[:at] + parts + items[at + 1 :], leaf)


def insert(run: Node | None, number: Decimal, key: Any) -> Node:
    if run is None:
        return (number,), (key,), True
    parts = _insert(run, number, key)
    if len(parts) == 1:
        return parts[0]
    return tuple(part[0][0] for part in parts), parts, False


def _remove(node: Node, number: Decimal, key: Any) -> Node | None:
    """The node without that entry: the same node if it has none, None once empty."""
    numbers, items, leaf = node
    if leaf:
        i = bisect.bisect_left(numbers, number)
        while i < len(numbers) and numbers[i] == number:
            if items[i] == key:
                numbers, items = numbers[:i] + numbers[i + 1 :], items[:i] + items[i + 1 :]
                return (numbers, items, leaf) if items else None
            i += 1
        return node
    for at in range(max(bisect.bisect_left(numbers, number) - 1, 0), len(items)):
        if numbers[at] > number:
            break
        child = _remove(items[at], number, key)
        if child is items[at]:
            continue
        if child is None:
            numbers, items = numbers[:at] + numbers[at + 1 :], items[:at] + items[at + 1 :]
            return (numbers, items, leaf) if items else None
        first = (child[0][0],)
        return numbers[:at] + first + numbers[at + 1 :], items[:at] + (child,) + items[at + 1 :], leaf  # noqa: RUF005
    return node


def remove(run: Node | None, number: Decimal, key: Any) -> Node | None:
    """The run without that entry (the same run if it has none), or None once empty."""
    if run is None:
        return None
    node = _remove(run, number, key)
    while node is not None and not node[2] and len(node[1]) == 1:
        node = node[1][0]  # a root of one child: its child
    return node


def build(entries: Sequence[tuple[Decimal, Any]]) -> Node | None:
    """A run of ``entries`` (in any order)."""
    ordered = sorted(entries, key=lambda entry: entry[0])
    level: list[Node] = [
        (tuple(n for n, _ in ordered[at : at + _FANOUT]), tuple(k for _, k in ordered[at : at + _FANOUT]), True)
        for at in range(0, len(ordered), _FANOUT)
    ]
    while len(level) > 1:
        level = [
            (tuple(child[0][0] for child in level[at : at + _FANOUT]), tuple(level[at : at + _FANOUT]), False)
            for at in range(0, len(level), _FANOUT)
        ]
    return level[0] if level else None


def _from(node: Node, low: Decimal | None) -> Iterator[tuple[Decimal, Any]]:
    numbers, items, leaf = node
    if leaf:
        i = 0 if low is None else bisect.bisect_left(numbers, low)
        yield from zip(numbers[i:], items[i:], strict=True)
        return
    for child in items[0 if low is None else max(bisect.bisect_left(numbers, low) - 1, 0) :]:
        yield from _from(child, low)


def keys(run: Node | None, low: Bound | None, high: Bound | None) -> Iterator[Any]:
    """The storage keys of the entries within the bounds (None: unbounded), in order."""
    if run is None:
        return
    for number, key in _from(run, None if low is None else low[0]):
        if low is not None and not low[1] and number == low[0]:
            continue
        if high is not None and (number > high[0] or (number == high[0] and not high[1])):
            return
        yield key
