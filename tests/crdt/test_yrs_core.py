"""crdt.yrs_core makes pycrdt's own Rust calls without its Python wrappers: same answers, pinned version."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
from pycrdt import Doc, Map, Text

from crdt.yrs_core import PYCRDT_VERSION, YrsCore
from tests.crdt.devices import Device


def test_the_installed_pycrdt_is_the_version_the_core_calls_were_written_for() -> None:
    assert version("pycrdt") == PYCRDT_VERSION, "check crdt/yrs_core.py against the new pycrdt, then update the pin"


def layout(doc: Doc) -> tuple[Map, Map, Text]:
    return doc.get("fields", type=Map), doc.get("tags", type=Map), doc.get("notes", type=Text)


def test_reads_and_encodings_are_pycrdts_own() -> None:
    phone = Device(41)
    phone.set(name="Kedai", visits=3)
    phone.tag("cash")
    phone.type(0, "hello")
    phone.tag("cash", False)
    doc = Doc(client_id=7)
    fields, tags, notes = layout(doc)
    core = YrsCore(doc, fields, tags, notes)
    core.apply(phone.doc.get_update())
    other = Doc(client_id=8)
    other.apply_update(phone.doc.get_update())

    assert doc.get_update() == other.get_update() == core.encoded()
    assert core.encoded(phone.state_vector()) == doc.get_update(phone.state_vector())
    state_vector, fields_json, tags_json, text = core.read()
    assert (state_vector, text) == (doc.get_state(), str(notes)) and text == "hello"
    assert json.loads(fields_json) == json.loads(str(fields)) == {"name": "Kedai", "visits": 3}  # keys in any order
    assert json.loads(tags_json) == json.loads(str(tags)) == {}


def test_applying_then_reading_in_one_transaction_reads_what_applying_then_reading_does() -> None:
    phone = Device(41)
    phone.set(name="Kedai")
    phone.tag("cash")
    phone.type(0, "hello")
    first, second = Doc(client_id=7), Doc(client_id=7)
    applied_then_read = YrsCore(first, *layout(first)).apply_then_read(phone.doc.get_update())
    core = YrsCore(second, *layout(second))
    core.apply(phone.doc.get_update())
    assert applied_then_read == core.read()
    assert first.get_update() == second.get_update()


def test_garbage_is_refused_as_pycrdt_refuses_it_and_the_document_stays_usable() -> None:
    doc = Doc(client_id=7)
    core = YrsCore(doc, *layout(doc))
    with pytest.raises(BaseException) as raised:  # pycrdt raises a Rust panic, a BaseException
        core.apply(b"\xff\xff\xff")
    assert not isinstance(raised.value, (KeyboardInterrupt, SystemExit))
    core.apply(Device(5).set(name="after"))
    assert '"name":"after"' in core.read()[1]
