"""The merge rule for the scalar fields of a shared record, the same for every writer.

Each field keeps the writes that no other write has seen (its *frontier*):

1. causal: a write replaces every write it saw, whatever the clocks say;
2. concurrent: of the writes left, the one with the later effective capture
   time wins, then the greater writer id, then the greater value (so that two
   writes of one writer in one millisecond still have one answer);
3. order-free: the frontier of a set of writes does not depend on the order
   they arrived in, so neither does the winner.

What a write saw: a Yjs item saw every item its writer's document held, which
Yjs documents hold per client as a prefix (all clocks below one), so an item
saw its own client's earlier items and the prefix its origin belongs to. The
server writes with one client id of its own and devices get the server's whole
document, so an item whose origin is the server's item number k saw every
write the server took in while it had written k items or fewer (its
*horizon*). A patch or a web write saw what the record held at the version it
was made on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from crdt.yjs_update import ItemId

SERVER_CLIENT = 2**32  # the server's own Yjs client id: above the 32-bit ids Yjs libraries draw, short to encode


class Stamp(NamedTuple):
    """Who wrote, and the effective capture time in milliseconds."""

    time_ms: int
    writer: str


@dataclass(slots=True)
class Write:
    """One write of one field, as the server remembers it while it is in the frontier. Its order is worked
    out once: taking a write in compares it with every write of the frontier, which holds one per writer
    whose writes never saw each other's."""

    value: Any
    stamp: Stamp
    version: int  # the record version that took it in
    horizon: int  # how many items the server had written to the document when it took it in
    item: ItemId | None = None  # the device's Yjs item that carries it
    order: tuple[int, str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.order = (self.stamp.time_ms, self.stamp.writer, canonical(self.value))

    def implies(self, other: Write) -> bool:
        """Whoever sees this write sees ``other`` too (both were taken in, ``other`` no later)."""
        if self.version < other.version or self.horizon < other.horizon:
            return False
        if self.item is None:
            return True
        return other.item is not None and other.item[0] == self.item[0] and other.item[1] <= self.item[1]

    def to_json(self) -> list[Any]:
        return [self.value, self.stamp.time_ms, self.stamp.writer, self.version, self.horizon, self.item]

    @staticmethod
    def from_json(data: list[Any]) -> Write:
        value, time_ms, writer, version, horizon, item = data
        return Write(value, Stamp(time_ms, writer), version, horizon, (item[0], item[1]) if item else None)


Frontier = tuple[Write, ...]
Saw = Callable[[Write], bool]


def canonical(value: Any) -> str:
    return _CANONICAL_JSON(plain_number(value))


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode  # json.dumps builds one per call


def same_value(a: Any, b: Any) -> bool:
    """Whether two field values are the same JSON value (1 and 1.0 are); strings, the usual case, compared as such."""
    if type(a) is str and type(b) is str:
        return a == b
    return canonical(a) == canonical(b)


def plain_number(value: Any) -> Any:
    """Integral numbers as integers (Yjs stores every number as a float)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [plain_number(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_number(v) for k, v in value.items()}
    return value


def merged(frontier: Iterable[Write], write: Write, saw: Saw) -> Frontier:
    """The frontier once ``write`` is taken in: it replaces what it saw.

    A write that loses to another one, which whoever sees it also sees, can never
    win again, so it is dropped: the frontier holds what can still matter. No write
    of a frontier drops another (it would have been dropped when it came), so only
    pairs with the new write are looked at: linear in the frontier, which grows with
    the writers of a field that never saw each other's writes.
    """
    kept = [(w, w.order) for w in frontier if not saw(w)]
    order = write.order
    if any(w_order == order and w.item == write.item for w, w_order in kept):
        return tuple(w for w, _ in kept)
    survivors = tuple(w for w, w_order in kept if not (order > w_order and write.implies(w)))
    if any(w_order > order and w.implies(write) for w, w_order in kept):
        return survivors
    return (*survivors, write)


def winner(frontier: Frontier) -> Write | None:
    return max(frontier, key=lambda write: write.order, default=None)


def seen_by_item(item: ItemId, origin: ItemId | None) -> Saw:
    """What a Yjs item written by ``item[0]`` at ``item[1]`` on top of ``origin`` saw."""
    client, clock = item

    def saw(write: Write) -> bool:
        if write.item is not None:
            if write.item[0] == client and write.item[1] < clock:
                return True
            if origin is not None and write.item[0] == origin[0] and write.item[1] <= origin[1]:
                return True
        return origin is not None and origin[0] == SERVER_CLIENT and write.horizon <= origin[1]

    return saw


def seen_at_version(base_version: int | None) -> Saw:
    """What a patch made on ``base_version`` saw (None: made on nothing, saw nothing)."""
    return lambda write: base_version is not None and write.version <= base_version
