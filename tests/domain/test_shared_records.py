"""Shared outlets merge through CRDTs, whatever order the pushes arrive in."""

import itertools

from pycrdt import Doc, Map

from crdt import SharedDocument
from service.domain.changes import Operation
from service.domain.decide import Actor
from service.domain.document_cache import DocumentCache
from service.domain.record_types import RecordType
from service.domain.records import Record
from tests.domain.helpers import plan, statuses
from tests.factories import T0, change

OUTLET = RecordType.OUTLET


def device_update(client_id: int, **fields: object) -> bytes:
    doc = Doc(client_id=client_id)
    target = doc.get("fields", type=Map)
    with doc.transaction():
        for name, value in fields.items():
            target[name] = value
    return doc.get_update()


def apply_in_order(changes) -> Record | None:
    record = None
    for one in changes:
        result = plan([one], [record] if record else [])
        record = (result.writes.get((OUTLET, "o1"), None) and result.writes[(OUTLET, "o1")].record) or record
    return record


def test_field_patches_merge_per_field_and_the_latest_capture_wins_in_any_order():
    a = change(OUTLET, "o1", {"name": "Kedai Ali", "phone": "111"})
    b = change(OUTLET, "o1", {"phone": "222"})  # captured later than a
    c = change(OUTLET, "o1", {"city": "Ipoh"}, crdt_update=device_update(7, channel="retail"))
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


def test_an_update_the_server_already_has_is_unchanged_and_the_answer_carries_only_what_the_device_lacks():
    update = device_update(9, name="Kedai Ali")
    first = plan([change(OUTLET, "o1", crdt_update=update)])
    record = first.writes[(OUTLET, "o1")].record
    device = SharedDocument(update)
    second = plan([change(OUTLET, "o1", crdt_update=update, state_vector=device.state_vector())], [record])
    assert statuses(second) == ["UNCHANGED"]
    assert second.writes == {}
    diff = second.outcomes[0].crdt_diff
    assert diff is not None and len(diff) < len(record.crdt_state)  # type: ignore[arg-type]
    device.apply(diff)
    assert device.materialize() == SharedDocument(record.crdt_state).materialize()


def test_undecodable_crdt_bytes_are_refused_and_leave_the_outlet_as_it_was():
    first = plan([change(OUTLET, "o1", {"name": "Kedai Ali"})])
    record = first.writes[(OUTLET, "o1")].record
    cache = DocumentCache()
    bad = change(OUTLET, "o1", crdt_update=b"\x01\xff\xfe garbage")
    good = change(OUTLET, "o1", {"phone": "123"})
    result = plan([bad, good], [record], cache=cache)
    assert statuses(result) == ["REFUSED", "MERGED"]
    assert result.outcomes[0].refusal.code == "CRDT_UNDECODABLE"  # type: ignore[union-attr]
    assert result.writes[(OUTLET, "o1")].record.fields["name"] == "Kedai Ali"


def test_a_crdt_update_that_sets_a_field_to_the_wrong_kind_is_refused():
    result = plan([change(OUTLET, "o1", crdt_update=device_update(5, latitude="north"))])
    assert result.outcomes[0].refusal.code == "INVALID_FIELD"  # type: ignore[union-attr]


def test_an_update_that_would_grow_the_outlet_past_the_limit_is_refused():
    result = plan([change(OUTLET, "o1", crdt_update=device_update(5, name="x" * 300_000))])
    assert result.outcomes[0].refusal.code in ("TOO_LARGE", "INVALID_FIELD")  # type: ignore[union-attr]


def test_deleting_a_shared_record_sets_deleted_and_managers_can_replace_notes():
    result = plan([change(OUTLET, "o1", {"name": "Kedai Ali"})])
    record = result.writes[(OUTLET, "o1")].record
    deleted = plan([change(OUTLET, "o1", operation=Operation.DELETE)], [record]).writes[(OUTLET, "o1")].record
    assert deleted.deleted and deleted.fields["deleted"] is True
    manager = Actor(writer="user:hq")
    notes = plan([change(OUTLET, "o1", {"notes": "Back door only"})], [record], actor=Actor("dev1", "rep1", "dev1"))
    assert notes.outcomes[0].refusal.field == "notes"  # type: ignore[union-attr]
    from service.domain.decide import decide_change
    from service.domain.document_cache import WorkingDocuments
    from service.domain.rules import RuleSettings

    decision = decide_change(
        change(OUTLET, "o1", {"notes": "Back door only"}),
        {record.key: record},
        manager,
        RuleSettings(),
        WorkingDocuments(DocumentCache()),
        T0,
    )
    assert decision.record.fields["notes"] == "Back door only"  # type: ignore[union-attr]


def test_hot_documents_come_from_the_cache():
    cache = DocumentCache()
    record = plan([change(OUTLET, "o1", {"name": "A"})], cache=cache).writes[(OUTLET, "o1")].record
    cache.put(record, SharedDocument(record.crdt_state))
    plan([change(OUTLET, "o1", {"name": "B"})], [record], cache=cache)
    assert (cache.hits, cache.misses) == (1, 0)
