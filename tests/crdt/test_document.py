"""SharedDocument, one behaviour at a time: layout, what it refuses, state, size."""

from __future__ import annotations

import gc
import json
import random
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from crdt import (
    SERVER_CLIENT,
    CrdtDecodeError,
    CrdtIncompleteError,
    CrdtLayoutError,
    SharedDocument,
    Stamp,
    materialize_json,
)
from crdt.yjs_update import decode_update, id_runs, uint_bytes
from tests.crdt.devices import Device

WEB = Stamp(0, "user:hq")


def synced_device(server: SharedDocument, client_id: int = 77) -> Device:
    device = Device(client_id)
    device.receive(server.state())
    return device


def test_an_empty_document_materializes_to_no_fields_no_tags_empty_notes() -> None:
    assert SharedDocument().materialize() == {"tags": [], "notes": ""}
    assert materialize_json(SharedDocument()) == '{"notes":"","tags":[]}'


def test_materialize_sorts_fields_keeps_only_true_tags_reads_notes_and_gives_integers() -> None:
    server = SharedDocument()
    device = synced_device(server)
    update = device.set(phone="+60", active=True, name="Kedai", city=None, visits=3, rating=4.5)
    server.merge_update(update, Stamp(1, "device-a"), 1)
    server.merge_update(device.tag("zeta"), Stamp(1, "device-a"), 2)
    server.merge_update(device.type(0, "hello"), Stamp(1, "device-a"), 3)
    server.set_tags({"alpha": True})

    materialized = server.materialize()
    assert list(materialized) == ["active", "city", "name", "phone", "rating", "visits", "tags", "notes"]
    assert materialized["visits"] == 3 and isinstance(materialized["visits"], int)
    assert materialized["rating"] == 4.5
    assert (materialized["tags"], materialized["notes"]) == (["alpha", "zeta"], "hello")
    assert json.loads(materialize_json(server)) == materialized


def test_replace_notes_reaches_devices_and_keeps_their_concurrent_typing() -> None:
    server = SharedDocument()
    device = synced_device(server)
    server.merge_update(device.type(0, "old text"), Stamp(1, "device-a"), 1)
    server.replace_notes("new text")
    typed = device.type(8, "!")  # typed on the device meanwhile
    server.merge_update(typed, Stamp(2, "device-a"), 2)
    device.receive(server.missing_for(device.state_vector()))

    assert device.view()["notes"] == server.materialize()["notes"]
    assert "new text" in server.materialize()["notes"] and "!" in server.materialize()["notes"]


EDITS = st.lists(
    st.tuples(st.integers(0, 2), st.sampled_from(("set", "tag", "untag", "type", "erase", "sync", "tags", "notes"))),
    max_size=25,
)


@settings(max_examples=100, deadline=None, database=None)
@given(edits=EDITS, seed=st.integers(0, 2**32))
def test_what_a_document_shows_after_each_change_is_what_its_stored_state_shows(
    edits: list[tuple[int, str]], seed: int
) -> None:
    """The record read after a change (the document keeps what it read until the next change) equals the
    record of the stored state, whatever mix of device and server edits came before."""
    rng = random.Random(seed)
    server = SharedDocument()
    devices = [synced_device(server, client_id) for client_id in (11, 22, 33)]
    for version, (index, edit) in enumerate(edits, start=1):
        device, tag, text = devices[index], rng.choice("abc"), rng.choice(("x", "yz", ""))
        if edit == "sync":
            device.receive(server.missing_for(device.state_vector()))
        elif edit == "tags":
            server.set_tags({tag: rng.random() < 0.5})
        elif edit == "notes":
            server.replace_notes(str(server.materialize()["notes"])[:2] + text)
        else:
            update = device_edit(device, edit, tag, text, rng)
            server.merge_update(update, Stamp(version, f"device-{index}"), version)
        assert server.materialize() == SharedDocument(server.state(), server.frontiers()).materialize()


def device_edit(device: Device, edit: str, tag: str, text: str, rng: random.Random) -> bytes:
    if edit == "set":
        return device.set(name=text)
    if edit == "tag":
        return device.tag(tag)
    if edit == "untag" and tag in device.tags:
        return device.tag(tag, False)  # a delete and nothing else
    if edit == "erase":
        return device.erase(rng.randrange(5), rng.randrange(1, 4))  # a delete and nothing else (or nothing)
    return device.type(rng.randrange(5), text or "w")


def test_state_and_frontiers_round_trip() -> None:
    server = SharedDocument()
    server.write_fields({"name": "Kedai", "city": "Ipoh"}, WEB, 1, None)
    server.merge_update(synced_device(server).set(name="Kedai Ali"), Stamp(5, "device-a"), 2)
    copy = SharedDocument(server.state(), server.frontiers())

    assert materialize_json(copy) == materialize_json(server)
    assert copy.frontiers() == server.frontiers()
    assert materialize_json(SharedDocument(b"")) == materialize_json(SharedDocument(None))


def test_an_update_the_server_already_has_changes_nothing() -> None:
    server = SharedDocument()
    update = synced_device(server).set(name="Kedai")
    assert server.merge_update(update, Stamp(1, "device-a"), 1).changed
    assert not server.merge_update(update, Stamp(1, "device-a"), 2).changed
    assert not server.merge_update(server.state(), Stamp(1, "device-a"), 3).changed


def test_a_field_written_as_text_or_a_root_outside_the_layout_is_a_layout_error() -> None:
    for build in (
        lambda doc: doc.get("fields", type=Text).insert(0, "not a map"),
        lambda doc: doc.get("other", type=Map).__setitem__("x", 1),
        lambda doc: doc.get("notes", type=Map).__setitem__("x", 1),
        lambda doc: doc.get("fields", type=Map).__setitem__("contact", Map({"name": "Ali"})),
    ):
        doc = Doc(client_id=5)
        build(doc)
        server = SharedDocument()
        with pytest.raises(CrdtLayoutError):
            server.merge_update(doc.get_update(), Stamp(1, "device-a"), 1)
        assert server.materialize() == {"tags": [], "notes": ""}


def test_devices_cannot_write_as_the_server() -> None:
    doc = Doc(client_id=SERVER_CLIENT)
    doc.get("fields", type=Map)["name"] = "forged"
    with pytest.raises(CrdtLayoutError):
        SharedDocument().merge_update(doc.get_update(), Stamp(1, "device-a"), 1)


def test_an_update_that_depends_on_what_the_server_never_got_is_refused_and_leaves_nothing() -> None:
    device = Device(9)
    first = device.set(name="A")
    second = device.set(name="B")
    third = device.type(0, "hello")
    server = SharedDocument()
    for update in (second, third, second + b""):
        with pytest.raises(CrdtIncompleteError):
            server.merge_update(update, Stamp(1, "device-a"), 1)
        assert server.state() == SharedDocument().state() and server.frontiers() == {}
    server.merge_update(first, Stamp(1, "device-a"), 1)
    server.merge_update(second, Stamp(2, "device-a"), 2)
    assert server.materialize()["name"] == "B"


def test_a_crafted_update_hanging_off_missing_items_cannot_grow_the_document() -> None:
    """Held-back content is never kept: the bricking update of the review is refused whole."""
    ghost = Device(123)
    ghost.set(name="never sent")
    before = ghost.doc.get_state()
    with ghost.doc.transaction():
        ghost.notes.insert(0, "x" * 200_000)
        ghost.fields["name"] = "y"
    crafted = ghost.doc.get_update(before)
    server = SharedDocument()
    with pytest.raises(CrdtIncompleteError):
        server.merge_update(crafted, Stamp(1, "device-a"), 1)
    assert len(server.state()) < 10


def test_items_whose_neighbours_point_at_each_other_are_an_incomplete_update() -> None:
    """Two items of one client, each written after the other (no Yjs writer makes this): refused, not looped on."""

    def item(origin_clock: int, text: str) -> bytes:  # an item after (5, origin_clock) holding one string
        origin = uint_bytes(5) + uint_bytes(origin_clock)
        return bytes([0x88]) + origin + uint_bytes(1) + b"\x77" + uint_bytes(1) + text.encode()

    structs = uint_bytes(2) + uint_bytes(5) + uint_bytes(0) + item(1, "a") + item(0, "b")
    crafted = uint_bytes(1) + structs + uint_bytes(0)
    server = SharedDocument()
    with pytest.raises(CrdtIncompleteError):
        server.merge_update(crafted, Stamp(1, "device-a"), 1)
    assert server.materialize() == {"tags": [], "notes": ""}


def test_a_document_read_from_its_state_places_every_item_as_the_one_that_took_them_in() -> None:
    """The key index built from a whole state (items whose neighbours come later in it) takes the same next updates."""
    server = SharedDocument()
    devices = [synced_device(server, client_id) for client_id in (3, 2_000_000_000, 7)]
    rng = random.Random(5)
    for version in range(1, 120):
        device = rng.choice(devices)
        device.receive(server.missing_for(device.state_vector()))
        update = device_edit(device, rng.choice(("set", "tag", "type")), f"t{version % 4}", f"n{version}", rng)
        server.merge_update(update, Stamp(version, "device"), version)
    reloaded = SharedDocument(server.state(), server.frontiers())
    for version in range(120, 140):
        device = devices[version % 3]
        device.receive(server.missing_for(device.state_vector()))
        update = device.set(city=f"c{version}") if version % 2 else device.type(3, "z")
        assert reloaded.merge_update(update, Stamp(version, "device"), version) == server.merge_update(
            update, Stamp(version, "device"), version
        )
    assert materialize_json(reloaded) == materialize_json(server)


def test_a_v2_update_is_not_taken() -> None:
    doc = Doc(client_id=3)
    doc.get("fields", type=Map)["name"] = "Kedai"
    v2 = bytes([0, 0, 1, 0, 3, 1, 0, 0, 0, 1, 6]) + b"fields\x04name"  # a v2-framed update (feature flag 0)
    with pytest.raises(CrdtDecodeError):
        SharedDocument().merge_update(v2, Stamp(1, "device-a"), 1)


def test_the_state_grows_with_writers_and_content_not_with_edits() -> None:
    """Patches and web writes are server edits of one client: no new client per edit."""
    server = SharedDocument()
    for version in range(1, 2001):
        server.write_fields({"name": f"name {version % 7}"}, Stamp(version, f"device-{version % 20}"), version, None)
    assert writers(server) == {SERVER_CLIENT}
    assert len(server.state()) < 600


def test_a_document_nobody_holds_is_freed_with_its_yjs_state() -> None:
    """A server decodes documents all day (the cache keeps only the hot ones): each dropped one must go."""
    document = SharedDocument(SharedDocument().state())
    document.write_fields({"name": "Kedai Ali"}, WEB, 1, None)
    document.replace_notes("Back door only")
    before_compaction = weakref.ref(document._doc)
    document.compact()
    gc.collect()
    assert before_compaction() is None
    dropped, its_doc = weakref.ref(document), weakref.ref(document._doc)
    del document
    gc.collect()
    assert dropped() is None and its_doc() is None


def test_thousands_of_mixed_edits_from_twenty_devices_keep_the_outlet_writable() -> None:
    rng = random.Random(8)
    server = SharedDocument()
    devices = [synced_device(server, rng.getrandbits(32)) for _ in range(20)]
    for version in range(1, 3_001):
        index = rng.randrange(20)
        stamp = Stamp(version, f"device-{index}")
        name = rng.choice(("name", "city", "phone"))
        if version % 2:
            server.write_fields({name: f"p{version}"}, stamp, version, version - 1)
        else:
            device = devices[index]
            device.receive(server.missing_for(device.state_vector()))
            server.merge_update(device.set(**{name: f"d{version}"}), stamp, version)
    assert set(len(frontier) for frontier in server.frontiers().values()) == {1}
    assert len(writers(server)) <= 21  # the server and the twenty devices
    server.write_fields({"active": False}, WEB, 3_001, 3_000)  # a manager can always write
    assert server.materialize()["active"] is False


def writers(document: SharedDocument) -> set[int]:
    """The Yjs clients the document holds anything of."""
    return {client for client, _, _ in id_runs(decode_update(document.state()))}
