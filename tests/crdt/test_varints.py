"""The native reader of Yjs v1 binaries (state vectors, updates) against what Yjs writes and the Python oracle."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from crdt._varints import state_vector_clock
from crdt.yjs_update import Item, Update, UpdateFormatError, decode_update
from crdt.yjs_update import uint_bytes as varint
from tests.crdt.reference_decoder import Refused, reference_decode

U64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(st.dictionaries(U64, U64, max_size=30), U64)
def test_state_vectors_give_each_clients_clock(clocks: dict[int, int], other: int) -> None:
    data = varint(len(clocks)) + b"".join(varint(client) + varint(clock) for client, clock in clocks.items())
    for client, clock in clocks.items():
        assert state_vector_clock(data, client) == clock
        assert state_vector_clock(memoryview(data), client) == clock
    assert state_vector_clock(data, other) == clocks.get(other, 0)
    if clocks:
        with pytest.raises(IndexError, match="cut short"):
            state_vector_clock(data[:-1], other)
    with pytest.raises(ValueError, match="left over"):
        state_vector_clock(data + b"\x00", other)


def test_a_state_vector_with_a_too_long_varint_is_refused() -> None:
    with pytest.raises(IndexError, match="too long"):
        state_vector_clock(b"\x01" + varint(2**64) + b"\x00", 0)
    assert state_vector_clock(b"\x01" + varint(2**64 - 1) + b"\x05", 2**64 - 1) == 5
    with pytest.raises(IndexError, match="cut short"):
        state_vector_clock(b"", 0)


def test_state_vectors_read_as_pycrdt_wrote_them() -> None:
    doc = Doc(client_id=2**32)
    doc.get("notes", type=Text).insert(0, "hello")
    phone = Doc(client_id=3_000_000_000)
    phone.apply_update(doc.get_update())
    phone.get("fields", type=Map)["name"] = "Kedai"
    assert [state_vector_clock(phone.get_state(), client) for client in (2**32, 3_000_000_000, 7)] == [5, 1, 0]


@given(st.dictionaries(U64, st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**20)), max_size=5), max_size=6))
def test_delete_set_ends_gives_each_clients_last_deleted_clock(runs: dict[int, list[tuple[int, int]]]) -> None:
    data = varint(len(runs)) + b"".join(
        varint(client) + varint(len(ranges)) + b"".join(varint(clock) + varint(length) for clock, length in ranges)
        for client, ranges in runs.items()
    )
    assert decode_update(b"\x00" + data).deleted_up_to == {
        client: max(clock + length for clock, length in ranges) for client, ranges in runs.items() if ranges
    }
    with pytest.raises(UpdateFormatError, match="v2 updates are not taken"):
        decode_update(b"\x00" + data + b"\x00")
    if data != b"\x00":
        with pytest.raises(UpdateFormatError, match="cut short"):
            decode_update(b"\x00" + data[:-1])


def test_an_update_deleting_text_says_where_its_deletions_end() -> None:
    doc = Doc(client_id=7)
    notes = doc.get("notes", type=Text)
    notes.insert(0, "abcdef")
    before = doc.get_state()
    del notes[1:4]
    update = decode_update(doc.get_update(before))
    assert update.deleted_up_to == {7: 4}
    with pytest.raises(UpdateFormatError, match="v2 updates are not taken"):
        decode_update(doc.get_update(before) + b"\x01")


# -- updates: the native reader and the Python oracle read every input alike --------------------------------


def read_alike(data: bytes) -> Update | None:
    """What both readers make of ``data`` (None: both refuse it); fails where they differ."""
    try:
        expected: Update | None = reference_decode(data)
    except (Refused, json.JSONDecodeError, RecursionError):
        expected = None
    try:
        got: Update | None = decode_update(data)
    except UpdateFormatError:
        got = None
    assert repr(got) == repr(expected)  # repr: NaN values compare equal
    return got


SCALARS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=8), st.integers(-(2**40), 2**40), st.floats(allow_nan=False)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
EDITS = st.lists(
    st.tuples(
        st.integers(0, 2), st.sampled_from(("field", "tag", "insert", "delete")), st.text("abc", max_size=3), VALUES
    ),
    max_size=12,
)


def replica_updates(edits: list[tuple[int, str, str, Any]]) -> list[bytes]:
    """The updates three replicas (32-bit client ids) write as they edit and sync now and then (ASCII
    notes: pycrdt's and Yrs' offsets differ past it; non-ASCII strings are read in the field values)."""
    replicas = [Doc(client_id=client) for client in (3_000_000_001, 7, 2**32 - 1)]
    updates = []
    for number, (at, kind, key, value) in enumerate(edits):
        doc = replicas[at]
        before = doc.get_state()
        fields, tags, notes = doc.get("fields", type=Map), doc.get("tags", type=Map), doc.get("notes", type=Text)
        if kind == "field":
            fields[key or "name"] = value
        elif kind == "tag":
            tags[key or "t"] = number % 3 != 0
        elif kind == "insert":
            notes.insert(min(len(notes), number), key or "d")
        elif len(notes):
            del notes[number % len(notes) :]
        update = doc.get_update(before)
        updates.append(update)
        for other in replicas:
            if number % 4 == 0 and other is not doc:
                other.apply_update(update)
    return updates


@given(EDITS)
def test_updates_yjs_writes_read_alike(edits: list[tuple[int, str, str, Any]]) -> None:
    for update in replica_updates(edits):
        assert read_alike(update) is not None


@given(EDITS, st.data())
def test_damaged_updates_read_alike(edits: list[tuple[int, str, str, Any]], data: st.DataObject) -> None:
    for update in replica_updates(edits)[:3]:
        at = data.draw(st.integers(0, len(update)))
        damage = data.draw(st.sampled_from(("cut", "flip", "insert")))
        if damage == "cut":
            damaged = update[:at]
        elif damage == "flip" and at < len(update):
            damaged = update[:at] + bytes([update[at] ^ data.draw(st.integers(1, 255))]) + update[at + 1 :]
        else:
            damaged = update[:at] + data.draw(st.binary(min_size=1, max_size=3)) + update[at:]
        read_alike(damaged)


@given(st.binary(max_size=64))
def test_garbage_reads_alike(data: bytes) -> None:
    read_alike(data)


def string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return varint(len(raw)) + raw


def one_item(content: bytes, kind: int, client: int = 9, clock: int = 0, key: str | None = "k") -> bytes:
    """A v1 update of one item under the root map ``fields`` (or, without a key, the root ``notes``)."""
    info = kind | (0x20 if key is not None else 0)
    parent = varint(1) + string("fields" if key is not None else "notes") + (string(key) if key is not None else b"")
    return varint(1) + varint(1) + varint(client) + varint(clock) + bytes([info]) + parent + content + varint(0)


def signed(value: int) -> bytes:
    """lib0's signed varint."""
    magnitude = abs(value)
    out = bytearray([(magnitude & 0x3F) | (0x40 if value < 0 else 0) | (0x80 if magnitude > 0x3F else 0)])
    magnitude >>= 6
    while magnitude:
        out.append((magnitude & 0x7F) | (0x80 if magnitude > 0x7F else 0))
        magnitude >>= 7
    return bytes(out)


def nested(depth: int) -> bytes:
    return bytes([117]) + varint(1) + nested(depth - 1) if depth else bytes([126])


@pytest.mark.parametrize(
    ("content", "kind", "values", "length"),
    [
        (varint(2) + string('{"a": [1, 2.5]}') + string("undefined"), 2, ({"a": [1, 2.5]}, None), 2),
        (
            varint(3) + b"\x7d" + signed(-(2**62)) + b"\x7d" + signed(2**63 - 1) + b"\x7d" + signed(0),
            8,
            (-(2**62), 2**63 - 1, 0),
            3,
        ),
        (varint(2) + b"\x7c" + struct.pack(">f", 1.5) + b"\x7a" + struct.pack(">q", -5), 8, (1.5, -5), 2),
        (varint(1) + b"\x74" + string(b"\x00\xff"), 8, (b"\x00\xff",), 1),
        (
            varint(1) + b"\x76" + varint(2) + string("x") + b"\x78" + string("y") + b"\x7f",
            8,
            ({"x": True, "y": None},),
            1,
        ),
        (varint(1) + nested(100), 8, (json.loads("[" * 100 + "null" + "]" * 100),), 1),
        (string(b"\x01\x02"), 3, (), 1),
        (string('{"image": 1}'), 5, (), 1),
        (string("bold") + string("true"), 6, (), 1),
        (varint(3) + string("div"), 7, (), 1),
        (string("guid") + b"\x76" + varint(0), 9, (), 1),
        (varint(2**40), 1, (), 2**40),
    ],
)
def test_every_content_kind_reads_as_lib0_wrote_it(
    content: bytes, kind: int, values: tuple[Any, ...], length: int
) -> None:
    update = read_alike(one_item(content, kind))
    assert update is not None
    assert update.items == (Item(9, 0, length, kind, None, None, "fields", None, "k", values),)


@pytest.mark.parametrize(
    "update",
    [
        one_item(varint(1) + nested(101), 8),  # nested too deep
        one_item(varint(1) + b"\x7d" + signed(2**63), 8),  # a signed varint over 63 bits
        one_item(varint(1) + b"\x77" + string(b"\xed\xa0\x80"), 8),  # a string that is not UTF-8
        one_item(varint(1) + b"\x70", 8),  # an unknown value type
        one_item(b"", 11),  # an unknown content kind
        one_item(varint(2), 1, clock=2**64 - 1),  # a clock past 2^64
        one_item(varint(1) + b"\x80" * 10 + b"\x00", 1),  # an unsigned varint over 64 bits
        one_item(varint(2**20) + b"\x7e", 8),  # a count the bytes do not hold
    ],
)
def test_out_of_range_updates_are_refused_by_both(update: bytes) -> None:
    assert read_alike(update) is None


def test_an_item_in_a_nested_type_and_one_after_an_origin() -> None:
    doc = Doc(client_id=11)
    doc.get("fields", type=Map)["list"] = Array([1, 2])
    doc.get("notes", type=Text).insert(0, "ab")
    before = doc.get_state()
    doc.get("notes", type=Text).insert(1, "x")
    assert read_alike(doc.get_update()) is not None
    (item,) = read_alike(doc.get_update(before)).items  # type: ignore[union-attr]
    assert (item.origin, item.right_origin, item.parent_root) == ((11, 3), (11, 4), None)
