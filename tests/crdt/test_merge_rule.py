"""The merge rule for shared scalar fields, property-tested: any arrival order, the rule's answer.

A round: devices (pycrdt documents with random 32-bit client ids, as the JS
``yjs`` library gives) start from the server's state, work offline (some edit a
field several times, their clocks ahead or behind), plain patches arrive made
on the round's base version or on nothing, and a manager may write on the base.
Every write of a round is concurrent with the other devices' writes, and a
device's later write replaces its own earlier one. The server gets the round's
changes in any order, any of them twice, storing and decoding its document
between changes as the service does; the record must be the same every time,
and each field must hold the rule's answer: of the writes nobody replaced, the
latest effective capture time, then the greatest writer id (then the value).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import CrdtDecodeError, SharedDocument, Stamp, materialize_json
from crdt.field_rule import canonical
from tests.crdt.devices import Device

FIELD_NAMES = ("name", "city", "phone")
WRITERS = ("device-a", "device-b", "device-c", "user:hq")
FAST = settings(max_examples=120, deadline=None, database=None)

values = st.one_of(st.integers(-1_000, 1_000), st.text(max_size=5), st.booleans(), st.none())
times = st.integers(0, 20)  # coarse, so equal capture times (ties) are common


@dataclass(frozen=True)
class Change:
    """One change as it reaches the server: a device's Yjs update, or a patch."""

    writer: str
    time_ms: int
    update: bytes | None = None
    patch: dict[str, Any] | None = None
    made_on_base: bool = False  # a patch made on the round's base version (else on nothing)

    def apply(self, server: SharedDocument, version: int, base_version: int, archive: SharedDocument | None) -> None:
        """``archive``: the document as it was before the server compacted it, when it did (updates were made on it)."""
        stamp = Stamp(self.time_ms, self.writer)
        if self.update is not None and archive is not None:
            server.merge_archived(archive, self.update, stamp, version)
        elif self.update is not None:
            server.merge_update(self.update, stamp, version)
        else:
            assert self.patch is not None
            server.write_fields(self.patch, stamp, version, base_version if self.made_on_base else None)


@dataclass(frozen=True)
class Round:
    base: bytes  # the server state every device starts from
    changes: list[Change]
    expected: dict[str, Any]  # per field, the rule's answer


@st.composite
def rounds(draw: st.DrawFn, values: st.SearchStrategy[Any] = values) -> Round:
    device_edits = st.lists(st.tuples(st.sampled_from(FIELD_NAMES), values, times), min_size=1, max_size=3)
    patches = st.tuples(
        st.sampled_from(WRITERS), times, st.dictionaries(st.sampled_from(FIELD_NAMES), values, min_size=1, max_size=2)
    )
    base = SharedDocument()
    base.write_fields(dict.fromkeys(FIELD_NAMES, "base"), Stamp(-5, "user:hq"), 1, None)
    changes: list[Change] = []
    candidates: dict[str, list[tuple[tuple[int, str, str], Any]]] = {name: [] for name in FIELD_NAMES}
    rng = random.Random(draw(st.integers(0, 2**32)))
    for writer in WRITERS[: draw(st.integers(1, 3))]:
        device = Device(rng.getrandbits(32))
        device.receive(base.state())
        last: dict[str, tuple[tuple[int, str, str], Any]] = {}
        for name, value, time_ms in draw(device_edits):
            changes.append(Change(writer, time_ms, update=device.set(**{name: value})))
            last[name] = ((time_ms, writer, canonical(value)), value)  # a device's later edit replaces its own
        for name, entry in last.items():
            candidates[name].append(entry)
    for writer, time_ms, body in draw(st.lists(patches, max_size=3)):
        made_on_base = writer.startswith("user:") or draw(st.booleans())  # a manager writes on a version
        changes.append(Change(writer, time_ms, patch=body, made_on_base=made_on_base))
        for name, value in body.items():
            candidates[name].append(((time_ms, writer, canonical(value)), value))
    expected = {name: max(entries)[1] if entries else "base" for name, entries in candidates.items()}
    return Round(base.state(), changes, expected)


def in_queue_order(round_: Round, order: list[int]) -> list[int]:
    """An interleaving: a device's own updates keep their order (each builds on the one before)."""
    order = list(order)
    for writer in WRITERS:
        mine = [i for i, change in enumerate(round_.changes) if change.writer == writer and change.update is not None]
        slots = [position for position, index in enumerate(order) if index in mine]
        for position, index in zip(slots, mine, strict=True):
            order[position] = index
    return order


def serve(round_: Round, order: list[int], reload: list[bool], compact_after: int | None = None) -> SharedDocument:
    """The round's changes in ``order``; the server compacts the document after ``compact_after`` of them."""
    server = SharedDocument()
    server.write_fields(dict.fromkeys(FIELD_NAMES, "base"), Stamp(-5, "user:hq"), 1, None)
    assert server.state() == round_.base
    archive = None
    for version, (index, again) in enumerate(zip(order, reload, strict=True), start=2):
        round_.changes[index].apply(server, version, 1, archive)
        if again:  # stored and decoded again, as between two pushes
            server = SharedDocument(server.state(), server.frontiers())
        if version - 1 == compact_after:
            archive = SharedDocument(server.state())
            server.compact()
    return server


@FAST
@given(round_=rounds(), data=st.data())
def test_any_arrival_order_gives_the_record_the_rule_names(round_: Round, data: st.DataObject) -> None:
    count = len(round_.changes)
    reference: str | None = None
    for _ in range(3):
        order = in_queue_order(round_, data.draw(st.permutations(range(count))))
        order += data.draw(st.lists(st.sampled_from(range(count)), max_size=2))  # duplicates change nothing
        reload = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
        compact_after = data.draw(st.none() | st.integers(1, len(order)))  # updates made before it use the archive
        server = serve(round_, order, reload, compact_after)
        record = materialize_json(server)
        reference = reference or record
        assert record == reference
    fields = server.materialize()
    assert {name: fields.get(name) for name in FIELD_NAMES} == round_.expected


@FAST
@given(round_=rounds(), data=st.data())
def test_devices_that_pull_the_server_state_show_the_server_record(round_: Round, data: st.DataObject) -> None:
    server = serve(round_, list(range(len(round_.changes))), [False] * len(round_.changes))
    device = Device(data.draw(st.integers(1, 2**32 - 1)))
    device.receive(round_.base)
    device.receive(server.missing_for(device.state_vector()))
    assert device.view() == server.materialize()


def test_a_write_made_after_seeing_the_current_value_replaces_it_whatever_the_clocks() -> None:
    server = SharedDocument()
    server.write_fields({"active": False}, Stamp(10_000, "device-ahead"), 1, None)  # a clock far ahead
    device = Device(7)
    device.receive(server.state())
    server.merge_update(device.set(active=True), Stamp(5, "device-behind"), 2)  # a clock far behind, but causal
    assert server.materialize()["active"] is True
    server.write_fields({"active": False}, Stamp(1, "user:hq"), 3, 2)  # a manager's fix made on version 2
    assert server.materialize()["active"] is False


def test_concurrent_writes_go_to_the_later_capture_then_the_greater_writer() -> None:
    for first, second in ((0, 1), (1, 0)):
        server = SharedDocument()
        writes = [("Kedai A", Stamp(100, "device-a")), ("Kedai B", Stamp(100, "device-b"))]
        for value, stamp in (writes[first], writes[second]):
            server.write_fields({"name": value}, stamp, 1, None)
        assert server.materialize()["name"] == "Kedai B"


def test_a_concurrent_yjs_edit_with_a_small_client_id_beats_an_earlier_patch() -> None:
    """Yjs' own tie-break (the greater client id) does not decide: the capture time does."""
    for patch_first in (True, False):
        server = SharedDocument()
        server.write_fields({"name": "Old"}, Stamp(0, "user:hq"), 1, None)
        device = Device(3)  # smaller than the server's client id
        device.receive(server.state())
        update = device.set(name="Device")
        version = 2
        for step in ("patch", "yjs") if patch_first else ("yjs", "patch"):
            if step == "patch":
                server.write_fields({"name": "Patch"}, Stamp(50, "device-z"), version, None)
            else:
                server.merge_update(update, Stamp(60, "device-a"), version)
            version += 1
        assert server.materialize()["name"] == "Device"


def test_garbage_is_refused_and_leaves_the_document_as_it_was() -> None:
    server = SharedDocument()
    server.write_fields({"name": "Kedai"}, Stamp(0, "user:hq"), 1, None)
    device = Device(11)
    device.receive(server.state())
    update = device.set(name="X", city="Y")
    before = (server.state(), server.frontiers())
    for bad in (update[: len(update) // 2], update + b"\x00", b"\x01\xff\xfe garbage", b""):
        with pytest.raises(CrdtDecodeError):
            server.merge_update(bad, Stamp(1, "device-a"), 2)
        assert (server.state(), server.frontiers()) == before
