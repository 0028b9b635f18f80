"""SharedDocument and FieldStamp, one behaviour at a time, and what garbage does to them."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from crdt import CrdtDecodeError, FieldStamp, SharedDocument, field_patch_update, materialize_json

NOW = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)


def device(client_id: int = 7) -> tuple[Doc, Map, Map, Text]:
    """A device's document in the protocol layout: fields, tags, notes."""
    doc = Doc(client_id=client_id)
    return doc, doc.get("fields", type=Map), doc.get("tags", type=Map), doc.get("notes", type=Text)


def sample_updates() -> list[bytes]:
    """Real updates: two devices' concurrent and dependent edits, a deletion-only update, a patch."""
    first, fields, tags, notes = device(7)
    with first.transaction():
        fields["name"] = "Kedai Ali"
        fields["active"] = True
        tags["vip"] = True
        notes += "open 9-5, ask for Ali"
    made = [first.get_update()]
    second, other_fields, other_tags, other_notes = device(8)
    second.apply_update(made[0])
    before = second.get_state()
    with second.transaction():
        other_notes.insert(0, "NB: ")
        other_fields["city"] = "Ipoh"
        other_tags["new"] = True
    made.append(second.get_update(before))
    before = first.get_state()
    del notes[0:5]
    del tags["vip"]
    made.append(first.get_update(before))  # deletions only: no new struct
    made.append(field_patch_update({"phone": "+60 5 123", "tags": ["fresh"]}, FieldStamp(NOW, "device-a")))
    return made


def populated() -> SharedDocument:
    document = SharedDocument()
    for update in sample_updates():
        document.apply(update)
    return document


# --- materialize ------------------------------------------------------------------------------


def test_an_empty_document_materializes_to_no_fields_no_tags_empty_notes() -> None:
    assert SharedDocument().materialize() == {"tags": [], "notes": ""}
    assert materialize_json(SharedDocument()) == '{"notes":"","tags":[]}'


def test_materialize_sorts_fields_keeps_only_true_tags_and_reads_notes() -> None:
    doc, fields, tags, notes = device()
    with doc.transaction():
        for name, value in (("phone", "+60"), ("active", True), ("name", "Kedai"), ("city", None)):
            fields[name] = value
        tags["zeta"] = True
        tags["alpha"] = True
        tags["off"] = False  # a false value is not a tag
        tags["truthy"] = "yes"  # only true is
        tags["gone"] = True
        notes += "hello"
    with doc.transaction():
        del tags["gone"]  # a deleted key is not a tag

    materialized = SharedDocument(doc.get_update()).materialize()

    assert list(materialized) == ["active", "city", "name", "phone", "tags", "notes"]
    assert materialized == {
        "active": True,
        "city": None,
        "name": "Kedai",
        "phone": "+60",
        "tags": ["alpha", "zeta"],
        "notes": "hello",
    }


def test_materialize_turns_nested_yjs_values_into_plain_json() -> None:
    doc, fields, _, _ = device()
    fields["contact"] = Map({"name": "Ali"})
    assert SharedDocument(doc.get_update()).materialize()["contact"] == {"name": "Ali"}


def test_materialize_json_is_canonical_whatever_the_insertion_order() -> None:
    one, two = SharedDocument(), SharedDocument()
    one.apply(field_patch_update({"name": "A", "city": "B", "tags": ["y", "x"]}, FieldStamp(NOW, "device-a")))
    two.apply(field_patch_update({"tags": {"x": True}, "city": "B"}, FieldStamp(NOW, "device-b")))
    two.apply(field_patch_update({"tags": ["y"], "name": "A"}, FieldStamp(NOW, "device-c")))

    assert materialize_json(one) == materialize_json(two) == '{"city":"B","name":"A","notes":"","tags":["x","y"]}'
    assert json.loads(materialize_json(one)) == one.materialize()


# --- replace_notes ----------------------------------------------------------------------------


def test_replace_notes_replaces_the_whole_text() -> None:
    document = populated()
    before = document.materialize()

    document.replace_notes("closed on Fridays")
    assert document.materialize() == {**before, "notes": "closed on Fridays"}
    document.replace_notes("")
    assert document.materialize() == {**before, "notes": ""}
    document.replace_notes("é 😀 ok")
    assert document.materialize()["notes"] == "é 😀 ok"


def test_replace_notes_reaches_devices_and_keeps_their_concurrent_typing() -> None:
    doc, _, _, notes = device()
    notes += "old text"
    server = SharedDocument(doc.get_update())

    server.replace_notes("new text")
    notes += "!"  # typed on the device meanwhile
    server.apply(doc.get_update())
    doc.apply_update(server.missing_for(doc.get_state()))

    assert str(notes) == server.materialize()["notes"]
    assert "new text" in str(notes) and "!" in str(notes) and "old" not in str(notes)


# --- state, apply ------------------------------------------------------------------------------


def test_state_round_trips() -> None:
    document = populated()
    copy = SharedDocument(document.state())

    assert materialize_json(copy) == materialize_json(document) == materialize_json(document.copy())
    assert copy.apply(document.state()) is False
    assert document.apply(copy.state()) is False
    assert materialize_json(SharedDocument(SharedDocument().state())) == materialize_json(SharedDocument())
    assert materialize_json(SharedDocument(b"")) == materialize_json(SharedDocument(None))


def test_apply_returns_true_once_then_false_for_an_update_already_applied() -> None:
    document = SharedDocument()
    for update in sample_updates():
        assert document.apply(update) is True
        assert document.apply(update) is False
    for update in sample_updates():  # again, in another order
        assert document.apply(update) is False
    assert document.apply(document.state()) is False
    patch = field_patch_update({"name": "X"}, FieldStamp(NOW + timedelta(days=1), "device-b"))
    assert document.apply(patch) is True
    assert document.apply(patch) is False


def test_an_update_that_only_deletes_is_a_change_and_is_kept() -> None:
    """Removing a tag or notes text makes an update with no new struct: the state vector stays."""
    doc, _, tags, notes = device()
    with doc.transaction():
        tags["vip"] = True
        notes += "hello world"
    document = SharedDocument(doc.get_update())
    vector = document.state_vector()
    before = doc.get_state()
    with doc.transaction():
        del tags["vip"]
        del notes[5:11]
    deletion = doc.get_update(before)

    assert document.apply(deletion) is True
    assert document.state_vector() == vector
    assert document.apply(deletion) is False
    assert SharedDocument(document.state()).materialize() == {"tags": [], "notes": "hello"}


def test_an_update_ahead_of_what_it_builds_on_is_held_back_in_the_state() -> None:
    """As in Yjs: kept (and saved by state()) until the update it depends on arrives."""
    doc, fields, _, notes = device()
    notes += "hello"
    first = doc.get_update()
    before = doc.get_state()
    with doc.transaction():
        notes += " world"
        fields["name"] = "Kedai"
    second = doc.get_update(before)
    before = doc.get_state()
    notes.insert(0, ">")
    del notes[1:3]
    third = doc.get_update(before)

    document = SharedDocument()
    assert document.apply(third) is True  # nothing visible yet, but the document holds more
    assert document.apply(third) is False
    assert document.apply(second) is True
    assert document.materialize() == {"tags": [], "notes": ""}
    stored = SharedDocument(document.state())  # what a server stores and decodes again later
    assert stored.apply(first) is True

    assert stored.materialize() == {"name": "Kedai", "tags": [], "notes": ">llo world"}
    replica = Doc()
    replica.apply_update(SharedDocument(third).missing_for(replica.get_state()))
    replica.apply_update(first)
    replica.apply_update(second)
    assert str(replica.get("notes", type=Text)) == ">llo world"


def test_several_updates_ahead_of_what_they_build_on_all_apply_once_it_arrives() -> None:
    """pycrdt alone integrates only part of two held-back updates here (fields.name goes missing)."""
    doc, fields, tags, notes = device()
    made = []
    for edit in (
        lambda: fields.update({"name": "first"}),
        lambda: fields.update({"name": "second"}),
        lambda: tags.update({"vip": True}),
        lambda: notes.insert(0, "hi"),
    ):
        before = doc.get_state()
        edit()
        made.append(doc.get_update(before))
    expected = {"name": "second", "tags": ["vip"], "notes": "hi"}

    for order in itertools.permutations(made):
        document = SharedDocument()
        for update in order:
            document.apply(update)
        assert document.materialize() == expected, order
        assert SharedDocument(document.state()).materialize() == expected
        assert not any(document.apply(update) for update in made)


# --- field patches and stamps ------------------------------------------------------------------


def test_field_patch_takes_tags_as_a_list_or_as_flags() -> None:
    document = SharedDocument()
    document.apply(field_patch_update({"tags": ["vip", "new"]}, FieldStamp(NOW, "device-a")))
    later = NOW + timedelta(seconds=1)
    document.apply(field_patch_update({"tags": {"vip": False, "late": True}}, FieldStamp(later, "device-a")))

    assert document.materialize()["tags"] == ["late", "new"]


@pytest.mark.parametrize("tags", ["vip", 3, None])
def test_field_patch_refuses_tags_that_are_neither_list_nor_flags(tags: object) -> None:
    with pytest.raises(ValueError, match="tags"):
        field_patch_update({"tags": tags}, FieldStamp(NOW, "device-a"))


def test_client_id_stays_below_2_to_the_53() -> None:
    assert FieldStamp(datetime(9999, 12, 31, tzinfo=UTC), "device-a").client_id() < 2**53
    assert FieldStamp(datetime(2159, 1, 1, tzinfo=UTC), "x" * 50).client_id() < 2**53


def test_client_id_clamps_dates_before_2020() -> None:
    before_2020 = [datetime(1970, 1, 1, tzinfo=UTC), datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC)]
    ids = {FieldStamp(when, "device-a").client_id() for when in before_2020}
    assert ids == {FieldStamp(datetime(2020, 1, 1, tzinfo=UTC), "device-a").client_id()}
    assert ids.pop() < 2**11  # millisecond part 0: only the device bits


def test_client_id_ignores_the_offset_and_sub_millisecond_parts() -> None:
    offset = NOW.astimezone(timezone(timedelta(hours=8)))
    assert FieldStamp(offset, "device-a").client_id() == FieldStamp(NOW, "device-a").client_id()
    within = NOW + timedelta(microseconds=999)
    assert FieldStamp(within, "device-a").client_id() == FieldStamp(NOW, "device-a").client_id()


@settings(max_examples=200, deadline=None, database=None)
@given(
    first=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2150, 1, 1), timezones=st.just(UTC)),
    gap_ms=st.integers(1, 10**9),
    first_device=st.text(max_size=20),
    second_device=st.text(max_size=20),
)
def test_client_id_grows_with_captured_at_whatever_the_devices(
    first: datetime, gap_ms: int, first_device: str, second_device: str
) -> None:
    first = first.replace(microsecond=first.microsecond // 1000 * 1000)
    earlier = FieldStamp(first, first_device).client_id()
    later = FieldStamp(first + timedelta(milliseconds=gap_ms), second_device).client_id()
    assert earlier < later < 2**53


# --- garbage ---------------------------------------------------------------------------------

GARBAGE = [
    b"",
    b"\x00",
    b"\x01",
    b"\xff",
    b"\xff" * 12,
    b"not a yjs update",
    b"\x01\x01\x0b\x00\x04\x01\x05notes\xff\xff\xff\xff\x0fab\x00",  # a 4 GiB string in 2 bytes
    b"\x01\xff\xff\xff\xff\x0f\x0b\x00",  # 2**32 structs announced
    b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # 2**63 clients announced
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_updates_raise_crdt_decode_error_and_change_nothing(garbage: bytes) -> None:
    document = populated()
    before = materialize_json(document)

    with pytest.raises(CrdtDecodeError):
        document.apply(garbage)
    if garbage:  # SharedDocument(b"") is an empty document
        with pytest.raises(CrdtDecodeError):
            SharedDocument(garbage)

    assert materialize_json(document) == before


def test_every_truncation_of_a_real_update_is_rejected() -> None:
    document = SharedDocument(sample_updates()[0])
    before = materialize_json(document)
    for update in [*sample_updates(), populated().state()]:
        for cut in range(len(update)):
            with pytest.raises(CrdtDecodeError):
                document.apply(update[:cut])
    assert materialize_json(document) == before


def test_an_update_rejected_half_way_is_not_applied_in_part() -> None:
    """pycrdt integrates client by client, so a bad struct can fail after good ones went in."""
    doc, _, _, notes = device(11)
    notes += "hello"
    good = b"\x01\x0e\x00\x84\x0b\x04\x02cd"  # client 14 appends "cd" after 11:4
    bad = b"\x01\x0d\x00\x04\x00\x0b\x00\x02zz"  # client 13 inside a string item, not a type
    for update in (b"\x02" + good + bad + b"\x00", b"\x02" + bad + good + b"\x00"):
        document = SharedDocument(doc.get_update())
        with pytest.raises(CrdtDecodeError):
            document.apply(update)
        assert document.materialize()["notes"] == "hello"
        assert document.state_vector() == doc.get_state()
        document.apply(b"\x01" + good + b"\x00")  # the good part alone still applies
        assert document.materialize()["notes"] == "hellocd"


PANICKING_BASE = b"\x01\x01\xa0\x1f\x00(\x01\x06fields\x01c\x01x\x00"  # client 4000 sets fields.c
PANICKING_UPDATE = b"\x01\x01\xa0\x1f\x01\xa8\x03\x1f\x00\x01x\x02\x0b\x01\x05\x01\xa0\x1f\x01\x00\x01"


def test_a_rust_panic_in_pycrdt_becomes_crdt_decode_error() -> None:
    raw = Doc()
    raw.apply_update(PANICKING_BASE)
    with pytest.raises(BaseException) as raised:  # what pycrdt does on its own
        raw.apply_update(PANICKING_UPDATE)
    assert not isinstance(raised.value, Exception)

    document = SharedDocument(PANICKING_BASE)
    before = materialize_json(document)
    with pytest.raises(CrdtDecodeError):
        document.apply(PANICKING_UPDATE)
    assert materialize_json(document) == before
    assert document.apply(field_patch_update({"name": "still works"}, FieldStamp(NOW, "device-a"))) is True


def test_keyboard_interrupt_is_not_turned_into_a_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    document = SharedDocument()

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(document._doc, "apply_update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        document.apply(b"\x00\x00")


@settings(max_examples=120, deadline=None, database=None)
@given(garbage=st.binary(max_size=200))
def test_random_bytes_are_rejected_cleanly_or_are_a_real_update(garbage: bytes) -> None:
    document = populated()
    untouched = populated()
    before = materialize_json(document)

    try:
        document.apply(garbage)
    except CrdtDecodeError:
        assert materialize_json(document) == before
        later = field_patch_update({"name": "later"}, FieldStamp(NOW + timedelta(days=1), "device-b"))
        assert document.apply(later) is untouched.apply(later) is True
        assert materialize_json(document) == materialize_json(untouched)


@pytest.mark.parametrize(
    "vector",
    [b"", b"\x01", b"\x02\x01\x01", b"\x01\x0b", b"\xff" * 9 + b"\x7f", b"\x01\x0b\xff", b"garbage"],
)
def test_invalid_state_vectors_raise_crdt_decode_error(vector: bytes) -> None:
    document = populated()
    before = materialize_json(document)

    with pytest.raises(CrdtDecodeError):
        document.missing_for(vector)

    assert materialize_json(document) == before


@settings(max_examples=120, deadline=None, database=None)
@given(vector=st.binary(max_size=40))
def test_random_state_vectors_are_rejected_cleanly_or_answered(vector: bytes) -> None:
    document = populated()
    before = materialize_json(document)

    try:
        missing = document.missing_for(vector)
    except CrdtDecodeError:
        pass
    else:
        assert SharedDocument(missing).materialize().keys() <= document.materialize().keys()

    assert materialize_json(document) == before


def test_a_valid_state_vector_gets_exactly_what_it_lacks() -> None:
    updates = sample_updates()
    document = populated()
    partial = SharedDocument(updates[0])

    partial.apply(document.missing_for(partial.state_vector()))

    assert materialize_json(partial) == materialize_json(document)
    assert materialize_json(SharedDocument(document.missing_for(None))) == materialize_json(document)
    assert materialize_json(SharedDocument(document.missing_for(SharedDocument().state_vector()))) == (
        materialize_json(document)
    )
