"""The native reader of Yjs' varint-only parts (state vectors, delete sets) against what Yjs writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from crdt._varints import delete_set_ends, uints
from crdt.yjs_update import UpdateFormatError, decode_update
from crdt.yjs_update import uint_bytes as varint

U64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(st.lists(U64, max_size=50), st.binary(max_size=4))
def test_uints_reads_every_varint_after_start(values: list[int], before: bytes) -> None:
    data = before + b"".join(map(varint, values))
    assert uints(data, len(before)) == values
    assert uints(memoryview(data)[len(before) :]) == values


def test_uints_refuses_a_cut_short_or_too_long_varint() -> None:
    with pytest.raises(IndexError, match="cut short"):
        uints(varint(300)[:1])
    with pytest.raises(IndexError, match="too long"):
        uints(varint(2**64))
    assert uints(varint(2**64 - 1)) == [2**64 - 1]
    assert uints(b"\x05", 9) == []  # a start past the end reads nothing


def test_state_vectors_read_as_pycrdt_wrote_them() -> None:
    doc = Doc(client_id=2**32)
    doc.get("notes", type=Text).insert(0, "hello")
    phone = Doc(client_id=3_000_000_000)
    phone.apply_update(doc.get_update())
    phone.get("fields", type=Map)["name"] = "Kedai"
    values = uints(phone.get_state())
    assert dict(zip(values[1::2], values[2::2], strict=True)) == {2**32: 5, 3_000_000_000: 1}


@given(st.dictionaries(U64, st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**20)), max_size=5), max_size=6))
def test_delete_set_ends_gives_each_clients_last_deleted_clock(runs: dict[int, list[tuple[int, int]]]) -> None:
    data = varint(len(runs)) + b"".join(
        varint(client) + varint(len(ranges)) + b"".join(varint(clock) + varint(length) for clock, length in ranges)
        for client, ranges in runs.items()
    )
    assert delete_set_ends(b"\x00" + data, 1) == {
        client: max(clock + length for clock, length in ranges) for client, ranges in runs.items() if ranges
    }
    with pytest.raises(ValueError, match="left over"):
        delete_set_ends(data + b"\x00")
    if data != b"\x00":
        with pytest.raises(IndexError, match="cut short"):
            delete_set_ends(data[:-1])


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
