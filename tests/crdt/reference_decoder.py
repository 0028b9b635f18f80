"""The Yjs v1 update reader in plain Python: the oracle the native reader (crdt/_varints.c) is tested against.

Same format, same limits: a varint over 64 bits (a signed one over 63), a clock past 2^64, a value
nested over 100 deep, a string that is not UTF-8, an unknown kind or anything cut short is refused;
so are bytes left over after the delete set.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from crdt.yjs_update import JSON_CONTENT, Item, ItemId, Update

MAX_DEPTH = 100
_ORIGIN, _RIGHT_ORIGIN, _PARENT_SUB = 0x80, 0x40, 0x20


class Refused(ValueError):
    """Bytes the reader does not take."""


def reference_decode(data: bytes) -> Update:
    reader = _Reader(data)
    items: list[Item] = []
    skipped: list[tuple[int, int, int]] = []
    for _ in range(reader.uint()):
        count, client, clock = reader.uint(), reader.uint(), reader.uint()
        for _ in range(count):
            info = reader.byte()
            if info in (0, 10):  # GC, skip
                length = reader.uint()
                skipped.append((client, clock, length))
            else:
                item = _read_item(reader, info, client, clock)
                items.append(item)
                length = item.length
            clock = _in_range(clock + length)
    ends: dict[int, int] = {}
    for _ in range(reader.uint()):
        client, runs = reader.uint(), reader.uint()
        for _ in range(runs):
            clock, length = reader.uint(), reader.uint()
            ends[client] = max(ends.get(client, 0), _in_range(clock + length))
    if reader.at != len(data):
        raise Refused("bytes left over")
    return Update(tuple(items), tuple(skipped), ends)


def _in_range(clock: int) -> int:
    if clock >= 2**64:
        raise Refused("clock out of range")
    return clock


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
            return len(reader.string().encode("utf-16-le")) // 2, ()
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
    raise Refused(f"unknown content kind {kind}")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data, self.at = data, 0

    def byte(self) -> int:
        return self.take(1)[0]

    def take(self, count: int) -> bytes:
        if self.at + count > len(self._data):
            raise Refused("cut short")
        chunk = self._data[self.at : self.at + count]
        self.at += count
        return chunk

    def uint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if shift > 63 or value >= 2**64:
                raise Refused("varint too long")
            if byte < 0x80:
                return value
            shift += 7

    def int(self) -> int:
        byte = self.byte()
        value, sign, shift = byte & 0x3F, -1 if byte & 0x40 else 1, 6
        while byte & 0x80:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if shift > 62 or value >= 2**63:
                raise Refused("varint too long")
            shift += 7
        return sign * value

    def string(self) -> str:
        try:
            return self.take(self.uint()).decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("not UTF-8") from None

    def item_id(self) -> ItemId:
        return (self.uint(), self.uint())

    def any(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise Refused("nested too deep")
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
                return {self.string(): self.any(depth + 1) for _ in range(self.uint())}
            case 117:
                return [self.any(depth + 1) for _ in range(self.uint())]
            case 116:
                return self.take(self.uint())
        raise Refused("unknown value type")


__all__ = ["JSON_CONTENT", "Refused", "reference_decode"]
