"""Reading Yjs v1 updates: the items they carry and what they delete.

pycrdt applies updates but does not say what is in them; the merge rule needs
each item's id, its origin (what its writer saw) and the map key it writes.
The reader (``crdt/_varints.c``, native: it runs on every merge) takes the
lib0/Yjs v1 binary format strictly: anything left over, cut short, out of
range or of an unknown kind is an error, so a v2 update or garbage is refused
instead of half-read. ``tests/crdt/reference_decoder.py`` is the same reader
in Python, the tests' oracle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

from crdt._varints import read_update  # native: read on every merge of a device's update

ItemId = tuple[int, int]  # (client, clock)

# Item content kinds (the low five bits of an item's info byte).
DELETED, JSON_CONTENT, BINARY, STRING, EMBED, FORMAT, TYPE, ANY, DOC = 1, 2, 3, 4, 5, 6, 7, 8, 9


class UpdateFormatError(ValueError):
    """Bytes that are not a Yjs v1 update."""


class Item(NamedTuple):
    """One item of an update (a run of ``length`` clocks of one client); a tuple, built at C speed."""

    client: int
    clock: int
    length: int
    kind: int
    origin: ItemId | None = None
    right_origin: ItemId | None = None
    parent_root: str | None = None  # the root type's name, when the item names its parent
    parent_item: ItemId | None = None  # a nested type's item, when the item names its parent
    parent_sub: str | None = None  # the map key, when the item names its parent
    values: tuple[Any, ...] = ()  # ANY / JSON content

    @property
    def id(self) -> ItemId:
        return (self.client, self.clock)

    @property
    def names_parent(self) -> bool:
        return self.origin is None and self.right_origin is None


class Update(NamedTuple):
    items: tuple[Item, ...]
    skipped: tuple[tuple[int, int, int], ...]  # GC and skip runs: (client, clock, length)
    deleted_up_to: dict[int, int]  # client -> the clock where the update's deletions of its items end


def decode_update(data: bytes) -> Update:
    try:
        items, skipped, deleted_up_to = read_update(data, Item)
        items = [_json_parsed(item) if item.kind == JSON_CONTENT else item for item in items]
    except (IndexError, json.JSONDecodeError, RecursionError) as error:
        raise UpdateFormatError(f"not a Yjs v1 update ({error})") from None
    except ValueError:  # bytes left over after the delete set
        raise UpdateFormatError("not a Yjs v1 update (bytes left over; v2 updates are not taken)") from None
    return Update(tuple(items), tuple(skipped), deleted_up_to)


def _json_parsed(item: Item) -> Item:
    """JSON content (older Yjs writers) comes as its strings; "undefined" is how they wrote it."""
    return item._replace(values=tuple(None if text == "undefined" else json.loads(text) for text in item.values))


def id_runs(update: Update) -> Iterator[tuple[int, int, int]]:
    """Every (client, clock, length) run the update holds, items and skipped runs alike."""
    yield from ((item.client, item.clock, item.length) for item in update.items)
    yield from update.skipped


def gc_runs(clocks: dict[int, int]) -> bytes:
    """A v1 update holding, for each client, one GC run over its clocks ``[0, clocks[client])``.

    Applied to an empty document, it makes every one of those clocks known and gone: what
    compaction starts the new document from, so that the server's clocks are never reused.
    """
    out = bytearray(uint_bytes(len(clocks)))
    for client, clock in sorted(clocks.items(), reverse=True):  # Yjs writes clients in descending order
        out += uint_bytes(1) + uint_bytes(client) + uint_bytes(0) + bytes([0]) + uint_bytes(clock)
    return bytes(out + uint_bytes(0))  # and an empty delete set


def uint_bytes(value: int) -> bytes:
    """lib0's unsigned varint: seven bits a byte, low bits first, the top bit saying more follow."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
