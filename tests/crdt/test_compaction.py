"""Compaction: the state keeps content and writers, not edits; updates made before it still count."""

from __future__ import annotations

import random

import pytest

from crdt import CrdtIncompleteError, SharedDocument, Stamp
from tests.crdt.devices import Device

THRESHOLD = 4096


def started_from(server: SharedDocument, client_id: int) -> Device:
    """A phone that (re)starts from the server's whole state, with a fresh client id as Yjs gives it."""
    device = Device(client_id)
    device.receive(server.state())
    return device


def edited(server: SharedDocument, edits: int, rng: random.Random) -> SharedDocument:
    for version in range(1, edits + 1):
        server.write_fields({rng.choice(("name", "city")): f"v{version}"}, Stamp(version, "device-a"), version, None)
    return server


def test_compaction_keeps_the_record_and_drops_the_history() -> None:
    server = edited(SharedDocument(), 500, random.Random(1))
    device = started_from(server, 7)
    server.merge_update(device.tag("vip") + b"", Stamp(501, "device-b"), 501)
    server.merge_update(device.type(0, "Back door"), Stamp(502, "device-b"), 502)
    before, size = server.materialize(), len(server.state())
    assert server.worth_compacting(THRESHOLD // 4)
    server.compact()
    assert server.materialize() == before
    assert len(server.state()) < size / 4
    assert started_from(server, 8).view() == before  # a phone starting over shows the same record


def test_ten_thousand_mixed_edits_from_twenty_phones_stay_within_a_few_kilobytes() -> None:
    rng = random.Random(10)
    server, epoch, largest = SharedDocument(), 0, 0
    phones: dict[int, tuple[int, Device]] = {}  # index -> (epoch it started from, phone)
    for version in range(1, 10_001):
        index, stamp = rng.randrange(20), Stamp(version, f"device-{rng.randrange(20)}")
        name = rng.choice(("name", "city", "phone", "channel"))
        if version % 2:
            server.write_fields({name: f"p{version}"}, stamp, version, version - 1)
        else:
            started, phone = phones.get(index, (-1, None))
            if phone is None or started != epoch:  # a new epoch: the phone starts over from the server
                started, phone = epoch, started_from(server, rng.getrandbits(32))
                phones[index] = (started, phone)
            phone.receive(server.missing_for(phone.state_vector()))
            server.merge_update(phone.set(**{name: f"d{version}"}), stamp, version)
        if server.worth_compacting(THRESHOLD):
            server.compact()
            epoch += 1
        largest = max(largest, len(server.state()))
    assert epoch > 0 and largest < THRESHOLD + 512
    server.write_fields({"active": False}, Stamp(10_001, "user:hq"), 10_001, 10_000)
    assert server.materialize()["active"] is False


def test_an_update_made_before_compaction_is_merged_through_the_archive() -> None:
    server = edited(SharedDocument(), 50, random.Random(2))
    server.write_fields({"phone": "111"}, Stamp(100, "user:hq"), 51, 50)
    server.replace_notes("Open 9 to 5.")
    phone = started_from(server, 9)
    offline = [  # made offline on epoch 0, pushed after the server compacted
        phone.set(phone="222"),
        phone.tag("vip"),
        phone.type(len("Open 9 to 5."), " Closed Friday."),
    ]
    archive = SharedDocument(server.state())
    server.write_fields({"city": "Ipoh"}, Stamp(200, "user:hq"), 53, 52)
    server.compact()
    server.replace_notes("NOTE: Open 9 to 5.")  # a manager edits the notes in the new epoch
    for version, update in enumerate(offline, start=54):
        server.merge_archived(archive, update, Stamp(300, "device-p"), version)
    record = server.materialize()
    assert (record["phone"], record["city"], record["tags"]) == ("222", "Ipoh", ["vip"])
    assert record["notes"] == "NOTE: Open 9 to 5. Closed Friday."


def test_an_old_update_that_loses_under_the_rule_changes_nothing() -> None:
    server = SharedDocument()
    server.write_fields({"name": "Kedai"}, Stamp(1, "user:hq"), 1, None)
    phone = started_from(server, 11)
    update = phone.set(name="Old name")
    archive = SharedDocument(server.state())
    server.compact()
    server.write_fields({"name": "Kedai Ali"}, Stamp(500, "user:hq"), 2, None)  # concurrent, captured later
    server.merge_archived(archive, update, Stamp(400, "device-p"), 3)
    assert server.materialize()["name"] == "Kedai Ali"


def test_an_update_built_on_compacted_history_without_its_archive_is_refused_and_leaves_nothing() -> None:
    server = edited(SharedDocument(), 20, random.Random(3))
    phone = started_from(server, 12)
    server.compact()
    before = server.state(), server.frontiers()
    with pytest.raises(CrdtIncompleteError, match="compacted"):
        server.merge_update(phone.set(name="stale"), Stamp(30, "device-p"), 21)
    assert (server.state(), server.frontiers()) == before
