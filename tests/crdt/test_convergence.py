"""Properties of the shared-record CRDT: order independence, last-writer-wins, convergence, garbage.

Updates come from simulated devices (pycrdt Docs with their own client ids editing
the protocol layout, sometimes after receiving some of the others' updates, so
their edits are concurrent with or depend on other devices' edits) and from
server-side field patches. The server side is always ``SharedDocument``; it gets
the updates in any order, also before what they build on, and sometimes stores
its state and decodes it again between two updates, as the service does.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text, merge_updates

from crdt import CrdtDecodeError, FieldStamp, SharedDocument, field_patch_update, materialize_json

DEVICE_CLIENT_IDS = (1_001, 1_002, 1_003)  # the simulated devices' Yjs client ids
DEVICE_IDS = ("device-a", "device-b", "device-c", "device-d", "device-e")  # who writes field patches
FIELD_NAMES = ("name", "city", "phone")
TAG_NAMES = ("vip", "new", "closed")
BASE_TIME = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)

FAST = settings(max_examples=100, deadline=None, database=None)


def test_patch_writers_have_distinct_tie_breakers() -> None:
    """The fixtures' precondition: no two DEVICE_IDS share a client id at the same millisecond."""
    assert len({zlib.crc32(device.encode()) & 0x7FF for device in DEVICE_IDS}) == len(DEVICE_IDS)


# --- simulated devices -------------------------------------------------------------------------

values = st.one_of(st.integers(-1_000, 1_000), st.text(max_size=6), st.booleans(), st.none())

edits = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(FIELD_NAMES), values),
    st.tuples(st.just("unset"), st.sampled_from(FIELD_NAMES)),
    st.tuples(st.just("tag"), st.sampled_from(TAG_NAMES), st.booleans()),
    st.tuples(st.just("untag"), st.sampled_from(TAG_NAMES)),
    st.tuples(st.just("insert"), st.integers(0, 50), st.text(min_size=1, max_size=6)),
    st.tuples(st.just("delete"), st.integers(0, 50), st.integers(1, 6)),
)

patch_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": values,
        "city": values,
        "tags": st.one_of(
            st.lists(st.sampled_from(TAG_NAMES), unique=True, max_size=3),
            st.dictionaries(st.sampled_from(TAG_NAMES), st.booleans(), max_size=3),
        ),
    },
)

steps = st.one_of(
    # a device edits its document (one transaction, one update)
    st.tuples(st.just("edit"), st.integers(0, len(DEVICE_CLIENT_IDS) - 1), st.lists(edits, min_size=1, max_size=4)),
    # a device receives the first updates made so far (how many: modulo their count + 1). A prefix of
    # the creation order holds everything its updates build on, so a device (a pycrdt Doc, standing in
    # for a Yjs client) never holds updates back: out-of-order arrival is the server's business here.
    st.tuples(st.just("receive"), st.integers(0, len(DEVICE_CLIENT_IDS) - 1), st.integers(0, 99)),
    # the server writes a field patch
    st.tuples(st.just("patch"), patch_bodies, st.integers(0, 20), st.sampled_from(DEVICE_IDS)),
)

plans = st.lists(steps, min_size=1, max_size=10).filter(lambda plan: any(step[0] != "receive" for step in plan))


@dataclass
class Simulation:
    devices: list[Doc] = field(default_factory=list)
    updates: list[bytes] = field(default_factory=list)  # every update made, in creation order


def _edit(doc: Doc, operation: tuple[Any, ...]) -> None:
    fields, tags, notes = doc.get("fields", type=Map), doc.get("tags", type=Map), doc.get("notes", type=Text)
    kind = operation[0]
    if kind == "set":
        fields[operation[1]] = operation[2]
    elif kind == "unset" and operation[1] in fields:
        del fields[operation[1]]
    elif kind == "tag":
        tags[operation[1]] = operation[2]  # False is a value that is not a tag
    elif kind == "untag" and operation[1] in tags:
        del tags[operation[1]]
    elif kind in ("insert", "delete"):
        text = str(notes)

        def offset(index: int) -> int:  # pycrdt's Text indexes are UTF-8 byte offsets
            return len(text[:index].encode())

        if kind == "insert":
            notes.insert(offset(operation[1] % (len(text) + 1)), operation[2])
        elif text:
            start = operation[1] % len(text)
            del notes[offset(start) : offset(start + min(operation[2], len(text) - start))]


def simulate(plan: list[tuple[Any, ...]]) -> Simulation:
    sim = Simulation(devices=[Doc(client_id=client_id) for client_id in DEVICE_CLIENT_IDS])
    used_stamps: set[tuple[int, str]] = set()
    for step in plan:
        if step[0] == "edit":
            doc = sim.devices[step[1]]
            before = doc.get_state()
            with doc.transaction():
                for operation in step[2]:
                    _edit(doc, operation)
            sim.updates.append(doc.get_update(before))
        elif step[0] == "receive":
            for update in sim.updates[: step[2] % (len(sim.updates) + 1)]:
                sim.devices[step[1]].apply_update(update)
        else:
            _, body, millis, device_id = step
            if (millis, device_id) in used_stamps:  # one patch per (millisecond, device): see field_patch.py
                continue
            used_stamps.add((millis, device_id))
            stamp = FieldStamp(BASE_TIME + timedelta(milliseconds=millis), device_id)
            sim.updates.append(field_patch_update(body, stamp))
    return sim


def apply_all(updates: list[bytes], reload: list[bool] | None = None) -> SharedDocument:
    """Apply in order; where ``reload`` says so, continue from the stored state decoded again (as the service does)."""
    document = SharedDocument()
    for index, update in enumerate(updates):
        document.apply(update)
        if reload and reload[index]:
            document = SharedDocument(document.state())
    return document


def device_view(doc: Doc) -> dict[str, Any]:
    """A device's three root types, read with pycrdt, in the shape of ``SharedDocument.materialize``."""
    fields = doc.get("fields", type=Map)
    tags = doc.get("tags", type=Map)
    view: dict[str, Any] = {key: fields[key] for key in sorted(fields.keys())}
    view["tags"] = sorted(tag for tag in tags.keys() if tags[tag] is True)  # noqa: SIM118 (pycrdt Map)
    view["notes"] = str(doc.get("notes", type=Text))
    return view


@st.composite
def arrivals(draw: st.DrawFn, updates: list[bytes]) -> tuple[list[bytes], list[bool]]:
    """The updates in any order, some of them more than once, and where the server reloads its state."""
    order = list(draw(st.permutations(updates)))
    if updates:
        for _ in range(draw(st.integers(0, 4))):
            order.insert(draw(st.integers(0, len(order))), draw(st.sampled_from(updates)))
    reload = draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    return order, reload


# --- 1. order and duplication ------------------------------------------------------------------


@FAST
@given(plan=plans, data=st.data())
def test_any_order_and_duplication_give_identical_state(plan: list[tuple[Any, ...]], data: st.DataObject) -> None:
    updates = simulate(plan).updates
    reference = materialize_json(apply_all(updates))
    order, reload = data.draw(arrivals(updates))

    document = apply_all(order, reload)

    assert materialize_json(document) == reference
    if updates:
        assert materialize_json(SharedDocument(merge_updates(*updates))) == reference
    assert materialize_json(SharedDocument(document.state())) == reference
    for update in updates:  # everything is in: nothing changes any more
        assert document.apply(update) is False
    assert materialize_json(document) == reference


# --- 2. last writer wins per field -------------------------------------------------------------

stamps = st.builds(
    lambda millis, device_id, offset_minutes: (
        millis,
        device_id,
        FieldStamp(
            (BASE_TIME + timedelta(milliseconds=millis)).astimezone(timezone(timedelta(minutes=offset_minutes))),
            device_id,
        ),
    ),
    st.one_of(st.integers(0, 3), st.integers(0, 10**11)),  # small ranges make equal capturedAt likely
    st.sampled_from(DEVICE_IDS),
    st.integers(-12 * 60, 14 * 60),
)


def _expected(patches: list[tuple[int, str, FieldStamp, dict[str, Any]]], key: str, pick: Any) -> list[Any]:
    """The values the latest patch(es) mentioning ``key`` give it (several when capturedAt ties)."""
    relevant = [(millis, pick(body)) for millis, _, _, body in patches if pick(body) is not _ABSENT]
    if not relevant:
        return [_ABSENT]
    latest = max(millis for millis, _ in relevant)
    return [value for millis, value in relevant if millis == latest]


_ABSENT = object()


def _json_value(value: Any) -> tuple[str, Any]:
    """A value as JSON sees it: Yjs numbers are doubles, so a patch's 3 reads back as 3.0."""
    if value is _ABSENT:
        return ("absent", None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ("number", float(value))
    return (type(value).__name__, value)


def _field(name: str) -> Any:
    return lambda body: body.get(name, _ABSENT)


def _tag(tag: str) -> Any:
    def pick(body: dict[str, Any]) -> Any:
        tags = body.get("tags", {})
        if isinstance(tags, list):
            return True if tag in tags else _ABSENT
        return tags.get(tag, _ABSENT)

    return pick


@settings(max_examples=80, deadline=None, database=None)
@given(
    patches=st.lists(
        st.tuples(stamps, patch_bodies).map(lambda pair: (*pair[0], pair[1])),
        min_size=1,
        max_size=6,
        unique_by=lambda patch: (patch[0], patch[1]),  # distinct (capturedAt millisecond, deviceId)
    ),
    data=st.data(),
)
def test_latest_captured_at_wins_per_field_whatever_the_arrival_order(
    patches: list[tuple[int, str, FieldStamp, dict[str, Any]]], data: st.DataObject
) -> None:
    updates = [field_patch_update(body, stamp) for _, _, stamp, body in patches]
    in_creation_order = apply_all(updates).materialize()
    arrival = data.draw(st.permutations(range(len(updates))))

    result = apply_all([updates[index] for index in arrival]).materialize()

    assert result == in_creation_order  # deterministic, ties included
    for name in ("name", "city"):
        expected = {_json_value(value) for value in _expected(patches, name, _field(name))}
        assert _json_value(result.get(name, _ABSENT)) in expected
    for tag in TAG_NAMES:
        flags = {flag is True for flag in _expected(patches, tag, _tag(tag))}
        assert (tag in result["tags"]) in flags


def test_a_later_patch_wins_even_when_it_arrives_first() -> None:
    early = field_patch_update({"name": "Old", "tags": ["vip"]}, FieldStamp(BASE_TIME, "device-a"))
    late = field_patch_update(
        {"name": "New", "tags": {"vip": False}}, FieldStamp(BASE_TIME + timedelta(milliseconds=1), "device-a")
    )
    for order in ([early, late], [late, early]):
        assert apply_all(order).materialize() == {"name": "New", "tags": [], "notes": ""}


# --- 3. devices converge with the server and with each other -----------------------------------


@FAST
@given(plan=plans, data=st.data())
def test_devices_end_with_the_server_state_after_applying_its_diff(
    plan: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    sim = simulate(plan)
    order, reload = data.draw(arrivals(sim.updates))
    server = apply_all(order, reload)
    expected = server.materialize()

    for device in sim.devices:
        device.apply_update(server.missing_for(device.get_state()))
        assert device_view(device) == expected
        assert materialize_json(SharedDocument(device.get_update())) == materialize_json(server)
        assert SharedDocument(device.get_update()).apply(server.missing_for(device.get_state())) is False
    newcomer = Doc()
    newcomer.apply_update(server.missing_for(Doc().get_state()))
    assert device_view(newcomer) == expected
    assert materialize_json(SharedDocument(server.missing_for(None))) == materialize_json(server)


@FAST
@given(plan=plans, data=st.data())
def test_two_replicas_exchanging_diffs_converge(plan: list[tuple[Any, ...]], data: st.DataObject) -> None:
    updates = simulate(plan).updates
    first = apply_all(data.draw(st.lists(st.sampled_from(updates), max_size=8)))  # any subset, any order
    second = apply_all(data.draw(st.lists(st.sampled_from(updates), max_size=8)))

    first.apply(second.missing_for(first.state_vector()))
    second.apply(first.missing_for(second.state_vector()))

    assert materialize_json(first) == materialize_json(second)


@FAST
@given(plan=plans)
def test_device_docs_exchanging_diffs_converge(plan: list[tuple[Any, ...]]) -> None:
    sim = simulate(plan)
    first, second = sim.devices[0], sim.devices[1]
    for update in sim.updates:  # each holds everything it knows of, integrated
        first.apply_update(update)
        second.apply_update(update)
    first_edit, second_edit = first.get_state(), second.get_state()
    first.get("notes", type=Text).insert(0, "A")  # then both edit concurrently
    second.get("notes", type=Text).insert(0, "B")
    first.get("fields", type=Map)["name"] = "from first"
    second.get("fields", type=Map)["name"] = "from second"
    first_update, second_update = first.get_update(first_edit), second.get_update(second_edit)

    first.apply_update(second.get_update(first.get_state()))
    second.apply_update(first.get_update(second.get_state()))

    assert device_view(first) == device_view(second)
    server = apply_all([*sim.updates, second_update, first_update])
    assert server.materialize() == device_view(first)


# --- 4. garbage made from real updates ---------------------------------------------------------


@FAST
@given(plan=plans, data=st.data())
def test_truncated_updates_are_rejected_and_change_nothing(plan: list[tuple[Any, ...]], data: st.DataObject) -> None:
    updates = simulate(plan).updates
    received = data.draw(st.integers(0, len(updates)))
    document = apply_all(updates[:received])
    before = materialize_json(document)
    target = data.draw(st.sampled_from(updates))
    cut = data.draw(st.integers(0, len(target) - 1))

    with pytest.raises(CrdtDecodeError):
        document.apply(target[:cut])

    assert materialize_json(document) == before
    for update in updates[received:]:  # and it still works normally
        document.apply(update)
    assert materialize_json(document) == materialize_json(apply_all(updates))


@FAST
@given(plan=plans, data=st.data())
def test_corrupted_updates_are_rejected_cleanly_or_accepted(plan: list[tuple[Any, ...]], data: st.DataObject) -> None:
    updates = simulate(plan).updates
    document = apply_all(updates[: data.draw(st.integers(0, len(updates)))])
    before = materialize_json(document)
    corrupted = bytearray(data.draw(st.sampled_from(updates)))
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(corrupted) - 1))
        corrupted[position] = data.draw(st.integers(0, 255))

    try:
        document.apply(bytes(corrupted))
    except CrdtDecodeError:
        assert materialize_json(document) == before


@FAST
@given(plan=plans, data=st.data())
def test_invalid_state_vectors_are_rejected(plan: list[tuple[Any, ...]], data: st.DataObject) -> None:
    sim = simulate(plan)
    document = apply_all(sim.updates)
    before = materialize_json(document)
    vector = data.draw(st.sampled_from([device.get_state() for device in sim.devices]))
    cut = data.draw(st.integers(0, len(vector) - 1))

    with pytest.raises(CrdtDecodeError):
        document.missing_for(vector[:cut])
    assert materialize_json(document) == before
