"""The merge rule through the sync engine: pushes from phones, patches and a manager's writes, any order.

The rounds come from tests/crdt/test_merge_rule.py; here each change goes through the push planner
(a phone's Yjs update or patch) or ``decide_change`` (a manager's ``writeRecord`` on the base version),
with the record stored and read back between changes as the service does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import Stamp
from service.domain.decide import Actor, decide_change
from service.domain.document_cache import DocumentCache, WorkingDocuments, decode, frontiers_of
from service.domain.record_types import RecordType
from service.domain.records import Record
from service.domain.rules import RuleSettings
from service.domain.scope import UNBOUND, Scope
from tests.crdt.test_merge_rule import FAST, FIELD_NAMES, Change, Round, in_queue_order, rounds
from tests.domain.helpers import plan
from tests.factories import change as make_change

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # round times are milliseconds after this
NOW = EPOCH + timedelta(days=1)
KEY = (RecordType.OUTLET, "o1")
IN_SCOPE = Scope("rep1", referenced=frozenset({"o1"}))  # the phones' rep has work at o1


def base_record(round_: Round) -> Record:
    from crdt import SharedDocument

    document = SharedDocument()
    document.write_fields(dict.fromkeys(FIELD_NAMES, "base"), Stamp(-5, "user:hq"), 1, None)
    assert document.state() == round_.base
    return Record(
        type=RecordType.OUTLET,
        id="o1",
        version=1,
        fields=document.materialize(),
        updated_at=EPOCH,
        crdt_state=document.state(),
        crdt_frontiers=frontiers_of(document),
    )


def deliver(one: Change, record: Record) -> Record:
    captured_at = EPOCH + timedelta(milliseconds=one.time_ms)
    if one.writer.startswith("user:"):
        decision = decide_change(
            make_change(RecordType.OUTLET, "o1", one.patch, captured_at=captured_at, base_version=1),
            {KEY: record},
            Actor(writer=one.writer),
            RuleSettings(),
            WorkingDocuments(DocumentCache()),
            captured_at,
            scope=UNBOUND,
        )
        return decision.record if decision.written and decision.record else record
    pushed = make_change(
        RecordType.OUTLET,
        "o1",
        one.patch,
        captured_at=captured_at,
        base_version=1 if one.made_on_base else None,
        crdt_update=one.update,
    )
    result = plan([pushed], [record], actor=Actor(one.writer, "rep1", one.writer), now=NOW, scope=IN_SCOPE)
    assert result.outcomes[0].status.value in ("MERGED", "UNCHANGED"), result.outcomes[0].refusal
    written = result.writes.get(KEY)
    return written.record if written else record


@settings(FAST, max_examples=60)
@given(round_=rounds(values=st.text(min_size=1, max_size=5)), data=st.data())  # outlet fields are text
def test_pushes_and_web_writes_in_any_order_give_the_record_the_rule_names(round_: Round, data: st.DataObject):
    results = set()
    for _ in range(2):
        record = base_record(round_)
        for index in in_queue_order(round_, data.draw(st.permutations(range(len(round_.changes))))):
            record = deliver(round_.changes[index], record)
        results.add(tuple(sorted((k, repr(v)) for k, v in record.fields.items())))
        assert {name: record.fields.get(name) for name in FIELD_NAMES} == round_.expected
        assert decode(record).materialize() == record.fields
    assert len(results) == 1
