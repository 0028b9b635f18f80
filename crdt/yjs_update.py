"""Reading Yjs v1 updates: the items they carry and what they delete.

pycrdt applies updates but does not say what is in them; the merge rule needs
each item's id, its origin (what its writer saw) and the map key it writes.
This decoder reads the lib0/Yjs v1 binary format strictly: anything left
over, cut short or of an unknown kind is an error, so a v2 update or garbage
is refused instead of half-read.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from crdt._varints import delete_set_ends  # native: a phone's update carries its whole delete set

ItemId = tuple[int, int]  # (client, clock)

# Item content kinds (the low five bits of an item's info byte).
DELETED, JSON_CONTENT, BINARY, STRING, EMBED, FORMAT, TYPE, ANY, DOC = 1, 2, 3, 4, 5, 6, 7, 8, 9
_ORIGIN, _RIGHT_ORIGIN, _PARENT_SUB = 0x80, 0x40, 0x20
_UNDEFINED = object()


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


@dataclass(frozen=True)
class Update:
    items: tuple[Item, ...]
    skipped: tuple[tuple[int, int, int], ...]  # GC and skip runs: (client, clock, length)
    deleted_up_to: dict[int, int]  # client -> the clock where the update's deletions of its items end


def decode_update(data: bytes) -> Update:
    reader = _Reader(data)
    try:
        items: list[Item] = []
        skipped: list[tuple[int, int, int]] = []
        for _ in range(reader.uint()):
            count, client, clock = reader.uint(), reader.uint(), reader.uint()
            for _ in range(count):
                info = reader.byte()
                if info in (0, 10):  # GC, Skip
                    length = reader.uint()
                    skipped.append((client, clock, length))
                else:
                    item = _read_item(reader, info, client, clock)
                    items.append(item)
                    length = item.length
                clock += length
        deleted_up_to = delete_set_ends(data, reader.at)  # the rest is the delete set
    except (IndexError, UnicodeDecodeError, json.JSONDecodeError, struct.error, RecursionError) as error:
        raise UpdateFormatError(f"not a Yjs v1 update ({type(error).__name__})") from None
    except UpdateFormatError:
        raise
    except ValueError:  # bytes left over after the delete set
        raise UpdateFormatError("not a Yjs v1 update (bytes left over; v2 updates are not taken)") from None
    return Update(tuple(items), tuple(skipped), deleted_up_to)


def _read_item(reader: _Reader, info: int, client: int, clock: int) -> Item:
    origin = reader.item_id() if info & _ORIGIN else None
    right_origin = reader.item_id() if info & _RIGHT_ORIGIN else None
    parent_root = parent_item = parent_sub = None
    if origin is None and right_origin is None:
        if reader.uint() == 1:
            parent_root = reader.string()
        else:
            parent_item = reader.item_id()
        if info & _PARENT_SUB:
            parent_sub = reader.string()
    kind = info & 0x1F
    length, values = _read_content(reader, kind)
    return Item(client, clock, length, kind, origin, right_origin, parent_root, parent_item, parent_sub, values)


def _read_content(reader: _Reader, kind: int) -> tuple[int, tuple[Any, ...]]:
    """(length in clocks, values) of an item's content."""
    match kind:
        case 1:  # deleted
            return reader.uint(), ()
        case 2:  # JSON strings
            texts = [reader.string() for _ in range(reader.uint())]
            return len(texts), tuple(None if text == "undefined" else json.loads(text) for text in texts)
        case 3:  # binary
            reader.take(reader.uint())
            return 1, ()
        case 4:  # string: its length counts UTF-16 code units
            text = reader.string()
            return len(text.encode("utf-16-le")) // 2, ()
        case 5:  # embed
            reader.string()
            return 1, ()
        case 6:  # format
            reader.string(), reader.string()
            return 1, ()
        case 7:  # nested type
            if reader.uint() in (3, 5):  # XmlElement and XmlHook carry a name
                reader.string()
            return 1, ()
        case 8:  # any
            values = tuple(reader.any() for _ in range(reader.uint()))
            return len(values), values
        case 9:  # sub-document
            reader.string(), reader.any()
            return 1, ()
    raise UpdateFormatError(f"not a Yjs v1 update (unknown content kind {kind})")


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


class _Reader:
    """lib0 decoding: unsigned and signed varints, strings, ``any`` values."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at = data, 0

    @property
    def at(self) -> int:
        return self._at

    def byte(self) -> int:
        value = self._data[self._at]
        self._at += 1
        return value

    def take(self, count: int) -> bytes:
        if self._at + count > len(self._data):
            raise IndexError("cut short")
        chunk = self._data[self._at : self._at + count]
        self._at += count
        return chunk

    def uint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 70:
                raise IndexError("varint too long")

    def int(self) -> int:
        byte = self.byte()
        value, sign, shift = byte & 0x3F, -1 if byte & 0x40 else 1, 6
        while byte & 0x80:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 70:
                raise IndexError("varint too long")
        return sign * value

    def string(self) -> str:
        return self.take(self.uint()).decode("utf-8")

    def item_id(self) -> ItemId:
        return (self.uint(), self.uint())

    def any(self) -> Any:
        match self.byte():
            case 127 | 126:  # undefined, null
                return None
            case 125:
                return self.int()
            case 124:
                return struct.unpack(">f", self.take(4))[0]
            case 123:
                return struct.unpack(">d", self.take(8))[0]
            case 122:
                return struct.unpack(">q", self.take(8))[0]
            case 121:
                return False
            case 120:
                return True
            case 119:
                return self.string()
            case 118:
                return {self.string(): self.any() for _ in range(self.uint())}
            case 117:
                return [self.any() for _ in range(self.uint())]
            case 116:
                return self.take(self.uint())
        raise UpdateFormatError("not a Yjs v1 update (unknown value type)")
