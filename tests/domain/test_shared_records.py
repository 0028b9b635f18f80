"""Shared outlets merge under one rule for every writer, whatever order the pushes arrive in."""

import itertools
from datetime import timedelta

from pycrdt import Doc, Text

from crdt import SharedDocument
from service.domain.changes import Operation
from service.domain.decide import Actor, decide_change
from service.domain.document_cache import DocumentCache, WorkingDocuments, decode
from service.domain.record_types import RecordType
from service.domain.records import Record
from service.domain.rules import RuleSettings
from service.domain.scope import UNBOUND, Scope
from tests.crdt.devices import Device
from tests.domain.helpers import plan, statuses
from tests.factories import T0, change

OUTLET = RecordType.OUTLET
KEY = (OUTLET, "o1")
MANAGER = Actor(writer="user:hq")
NOW = T0 + timedelta(days=2)
IN_SCOPE = Scope("rep1", referenced=frozenset({"o1"}))  # the devices' rep has a visit at o1


def device_for(record: Record | None, client_id: int) -> Device:
    device = Device(client_id)
    if record is not None and record.crdt_state:
        device.receive(record.crdt_state)
    return device


def push(changes, record: Record | None = None, **options) -> tuple[list[str], Record | None]:
    result = plan(changes, [record] if record else [], now=options.pop("now", NOW), scope=IN_SCOPE, **options)
    written = result.writes.get(KEY)
    return statuses(result), written.record if written else record


def web_write(record: Record | None, fields: dict, base_version: int | None = None, now=NOW) -> Record:
    decision = decide_change(
        change(OUTLET, "o1", fields, captured_at=now, base_version=base_version),
        {KEY: record} if record else {},
        MANAGER,
        RuleSettings(),
        WorkingDocuments(DocumentCache()),
        now,
        scope=UNBOUND,
    )
    assert decision.record is not None, decision
    return decision.record


def apply_in_order(changes) -> Record | None:
    record = None
    for one in changes:
        _, record = push([one], record)
    return record


def test_field_patches_merge_per_field_and_the_latest_capture_wins_in_any_order():
    a = change(OUTLET, "o1", {"name": "Kedai Ali", "phone": "111"}, captured_at=T0)
    b = change(OUTLET, "o1", {"phone": "222"}, captured_at=T0 + timedelta(minutes=1))
    c = change(OUTLET, "o1", {"city": "Ipoh"}, crdt_update=Device(7).set(channel="retail"), captured_at=T0)
    results = set()
    for order in itertools.permutations([a, b, c]):
        record = apply_in_order(order)
        assert record is not None
        results.add(tuple(sorted((k, str(v)) for k, v in record.fields.items())))
    assert len(results) == 1
    fields = dict(results.pop())
    assert (fields["phone"], fields["name"], fields["city"], fields["channel"]) == (
        "222",
        "Kedai Ali",
        "Ipoh",
        "retail",
    )


def test_a_clock_running_ahead_cannot_beat_the_managers_later_fix():
    record = web_write(None, {"name": "Kedai Ali", "active": True}, now=T0)
    ahead = change(OUTLET, "o1", {"active": False}, captured_at=T0 + timedelta(hours=23))  # device clock 23 h ahead
    _, record = push([ahead], record, now=T0 + timedelta(minutes=5))
    assert record is not None and record.fields["active"] is False
    fixed = web_write(record, {"active": True}, now=T0 + timedelta(minutes=10))
    assert fixed.fields["active"] is True
    late = change(OUTLET, "o1", {"active": False}, captured_at=T0 + timedelta(hours=23))  # the same device again
    assert push([late], fixed, now=T0 + timedelta(minutes=11))[1].fields["active"] is False  # a later real edit wins


def test_a_device_whose_clock_is_behind_still_replaces_what_it_saw():
    record = web_write(None, {"name": "Kedai Ali"}, now=T0)
    behind = change(
        OUTLET, "o1", {"name": "Kedai Ali & Sons"}, captured_at=T0 - timedelta(days=30), base_version=record.version
    )
    status, record = push([behind], record)
    assert status == ["MERGED"] and record is not None and record.fields["name"] == "Kedai Ali & Sons"
    device = device_for(record, 42)
    yjs = change(OUTLET, "o1", crdt_update=device.set(name="Kedai Ali Sdn Bhd"), captured_at=T0 - timedelta(days=60))
    assert push([yjs], record)[1].fields["name"] == "Kedai Ali Sdn Bhd"


def test_a_yjs_edit_and_a_patch_go_to_the_later_capture_whatever_the_client_ids():
    record = web_write(None, {"name": "Old"}, now=T0)
    for client_id in (3, 2**32 - 1):
        update = device_for(record, client_id).set(name="From Yjs")
        yjs = change(OUTLET, "o1", crdt_update=update, captured_at=T0 + timedelta(seconds=2))
        patch = change(OUTLET, "o1", {"name": "From patch"}, captured_at=T0 + timedelta(seconds=1))
        for order in ([yjs, patch], [patch, yjs]):
            assert apply_in_order_from(record, order).fields["name"] == "From Yjs"


def apply_in_order_from(record: Record, changes) -> Record:
    for one in changes:
        _, record = push([one], record)  # type: ignore[assignment]
    return record


def test_a_patch_that_changes_nothing_is_unchanged_and_keeps_the_version():
    record = web_write(None, {"name": "Kedai Ali"}, now=T0)
    same = change(OUTLET, "o1", {"name": "Kedai Ali"}, captured_at=T0 + timedelta(minutes=1), base_version=1)
    status, after = push([same], record)
    assert status == ["UNCHANGED"]
    assert after is not None and after.version == record.version and after.fields == record.fields


def test_an_update_the_server_already_has_is_unchanged_and_the_answer_carries_only_what_the_device_lacks():
    update = Device(9).set(name="Kedai Ali")
    _, record = push([change(OUTLET, "o1", crdt_update=update)])
    assert record is not None
    device = Device(10)
    device.receive(update)
    result = plan([change(OUTLET, "o1", crdt_update=update, state_vector=device.state_vector())], [record], now=NOW)
    assert statuses(result) == ["UNCHANGED"] and result.writes == {}
    diff = result.outcomes[0].crdt_diff
    assert diff is not None and len(diff) < len(record.crdt_state)  # type: ignore[arg-type]
    device.receive(diff)
    assert device.view() == decode(record).materialize()


def test_crdt_bytes_are_refused_by_what_is_wrong_with_them_and_leave_the_outlet_as_it_was():
    record = web_write(None, {"name": "Kedai Ali"}, now=T0)
    doc = Doc(client_id=6)
    doc.get("fields", type=Text).insert(0, "oops")
    orphan = Device(8)
    orphan.set(name="never sent")
    cases = {
        "CRDT_UNDECODABLE": b"\x01\xff\xfe garbage",
        "CRDT_LAYOUT": doc.get_update(),
        "CRDT_INCOMPLETE": orphan.set(name="depends on the first"),
    }
    for code, update in cases.items():
        queue = [change(OUTLET, "o1", crdt_update=update), change(OUTLET, "o1", {"phone": "1"})]
        result = plan(queue, [record], scope=IN_SCOPE)
        assert statuses(result) == ["REFUSED", "MERGED"], code
        assert result.outcomes[0].refusal.code == code  # type: ignore[union-attr]
        assert result.writes[KEY].record.fields["name"] == "Kedai Ali"


def test_a_device_cannot_write_repids_through_a_yjs_update():
    record = web_write(None, {"name": "Kedai Ali"}, now=T0)
    update = device_for(record, 12).set(repIds=["rep9"])
    result = plan([change(OUTLET, "o1", crdt_update=update)], [record], now=NOW, scope=IN_SCOPE)
    assert result.outcomes[0].refusal.code == "READ_ONLY_FIELD"  # type: ignore[union-attr]


def test_a_crdt_update_that_sets_a_field_to_the_wrong_kind_is_refused():
    result = plan([change(OUTLET, "o1", crdt_update=Device(5).set(latitude="north"))])
    assert result.outcomes[0].refusal.code == "INVALID_FIELD"  # type: ignore[union-attr]


def test_deleting_a_shared_record_sets_deleted_and_managers_can_replace_notes():
    _, record = push([change(OUTLET, "o1", {"name": "Kedai Ali"})])
    assert record is not None
    _, deleted = push([change(OUTLET, "o1", operation=Operation.DELETE)], record)
    assert deleted is not None and deleted.deleted and deleted.fields["deleted"] is True
    notes = plan([change(OUTLET, "o1", {"notes": "Back door only"})], [record], actor=Actor("dev1", "rep1", "dev1"))
    assert notes.outcomes[0].refusal.field == "notes"  # type: ignore[union-attr]
    assert web_write(record, {"notes": "Back door only"}).fields["notes"] == "Back door only"


def test_hot_documents_come_from_the_cache():
    cache = DocumentCache()
    record = plan([change(OUTLET, "o1", {"name": "A"})], cache=cache, now=NOW).writes[KEY].record
    cache.put(record, decode(record))
    plan([change(OUTLET, "o1", {"name": "B"})], [record], cache=cache, now=NOW)
    assert (cache.hits, cache.misses) == (1, 0)
    assert isinstance(decode(record), SharedDocument)


def test_a_losing_yjs_edit_is_kept_so_the_same_devices_next_edit_still_merges():
    record = web_write(None, {"name": "Kedai Ali"}, now=T0)
    device = device_for(record, 31)
    winner = change(OUTLET, "o1", {"name": "Winner"}, captured_at=T0 + timedelta(hours=2))
    _, record = push([winner], record)
    loser = change(OUTLET, "o1", crdt_update=device.set(name="Loser"), captured_at=T0 + timedelta(hours=1))
    status, after = push([loser], record)
    assert status == ["UNCHANGED"] and after is not None and after.version == record.version  # type: ignore[union-attr]
    assert after.crdt_state != record.crdt_state  # type: ignore[union-attr]  # its items are kept all the same
    following = change(OUTLET, "o1", crdt_update=device.set(city="Ipoh"), captured_at=T0 + timedelta(hours=3))
    status, after = push([following], after)
    assert status == ["MERGED"] and after is not None
    assert (after.fields["name"], after.fields["city"]) == ("Winner", "Ipoh")


def test_a_device_that_never_syncs_cannot_grow_the_writes_an_outlet_keeps_without_end():
    """Each edit from a new Yjs client, never pulled: each is kept until a write that saw it comes. Past
    the limit the device is refused (TOO_LARGE, saying what to do); a manager's write empties them."""
    settings = RuleSettings(max_unseen_writes=5)
    record = web_write(None, {"name": "Kedai Ali"})  # one write kept: the name's
    documents = WorkingDocuments(DocumentCache())
    device = Actor(writer="dev1", rep_id="rep1", device_id="dev1")
    outcomes = []
    for n in range(7):
        update = Device(1000 + n).set(contactName=f"contact {n}")
        decision = decide_change(
            change(OUTLET, "o1", crdt_update=update, captured_at=T0 + timedelta(minutes=n)),
            {KEY: record},
            device,
            settings,
            documents,
            NOW,
            scope=IN_SCOPE,
        )
        outcomes.append(decision.status.value)
        if decision.record is not None and decision.written:
            record = decision.record  # one batch: its working document goes on from here
    assert outcomes == ["MERGED"] * 4 + ["REFUSED"] * 3
    assert decision.verdict is not None and decision.verdict.code == "TOO_LARGE"
    assert "pull the outlet" in decision.verdict.reason
    assert sum(map(len, decode(record).frontiers().values())) == 5
    fixed = web_write(record, {"contactName": "Pak Ali"})
    assert decode(fixed).frontiers()["contactName"][0].value == "Pak Ali"
    assert len(decode(fixed).frontiers()["contactName"]) == 1
