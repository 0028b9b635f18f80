"""A rep's devices change and point at only the outlets of its scope; managers assign outlets (repIds)."""

from pycrdt import Doc, Map

from service.domain.decide import Actor, Decision, decide_change
from service.domain.document_cache import DocumentCache, WorkingDocuments
from service.domain.outcomes import ChangeStatus
from service.domain.receipts import Receipt
from service.domain.record_types import RecordType
from service.domain.records import Record
from service.domain.refusals import RefusalAction
from service.domain.rules import RuleSettings
from service.domain.scope import UNBOUND, OutletAccess, Scope, assigned_reps
from tests.domain.helpers import plan, statuses
from tests.factories import T0, change

OUTLET, VISIT = RecordType.OUTLET, RecordType.VISIT
FIX, ACK = RefusalAction.FIX_DATA, RefusalAction.ACKNOWLEDGE
MANAGER = Actor("user:hq")


def manager_write(outlet_id: str, fields: dict[str, object], current: Record | None = None) -> Decision:
    """A manager's writeRecord of an outlet."""
    records = {current.key: current} if current else {}
    documents = WorkingDocuments(DocumentCache())
    return decide_change(
        change(OUTLET, outlet_id, fields), records, MANAGER, RuleSettings(), documents, T0, scope=UNBOUND
    )


def managed_outlet(outlet_id: str, **fields: object) -> Record:
    """An outlet as a manager's writeRecord stores it (with its CRDT state)."""
    record = manager_write(outlet_id, fields).record
    assert record is not None
    return record


ELSEWHERE = managed_outlet("o9", name="Kedai Siti", repIds=["rep2"])
MINE = managed_outlet("o1", name="Kedai Ali", repIds=["rep1"])


def visit_at(outlet_id: str, record_id: str = "v1"):
    return change(VISIT, record_id, {"outletId": outlet_id, "status": "PLANNED"})


def yjs_update(**fields: object) -> bytes:
    doc = Doc(client_id=77)
    target = doc.get("fields", type=Map)
    with doc.transaction():
        for name, value in fields.items():
            target[name] = value
    return doc.get_update()


def test_a_change_to_an_outlet_outside_the_scope_is_refused_blocks_the_queue_and_shows_nothing():
    result = plan([change(OUTLET, "o9", {"phone": "1"}), visit_at("o1")], [ELSEWHERE, MINE])
    assert statuses(result) == ["REFUSED", "BLOCKED"]
    refused = result.outcomes[0]
    assert refused.refusal is not None
    assert (refused.refusal.code, refused.refusal.action) == ("OUT_OF_SCOPE", FIX)
    assert refused.record is None and refused.crdt_diff is None
    assert "Kedai Siti" not in refused.refusal.reason  # not even the outlet's name leaves the scope
    assert result.writes == {}


def test_once_a_manager_assigns_the_outlet_the_refused_change_goes_through_and_the_queue_drains():
    first = plan([change(OUTLET, "o9", {"phone": "1"}, offline_id="a"), visit_at("o1")], [ELSEWHERE, MINE])
    refusal = first.outcomes[0].refusal
    assigned = manager_write("o9", {"repIds": ["rep2", "rep1"]}, ELSEWHERE).record
    assert assigned is not None
    again = plan(
        [change(OUTLET, "o9", {"phone": "1"}, offline_id="a"), visit_at("o1")],
        [assigned, MINE],
        refusals=[refusal],  # type: ignore[list-item]
    )
    assert statuses(again) == ["MERGED", "APPLIED"]
    assert [r.status.value for r in again.refusals.values()] == ["RESOLVED"]
    assert again.outcomes[0].record is not None and again.outcomes[0].record.fields["phone"] == "1"


def test_outlets_the_reps_records_point_at_are_in_its_scope():
    scope = Scope("rep1", referenced=frozenset({"o9"}))
    result = plan([change(OUTLET, "o9", {"phone": "1"}), visit_at("o9")], [ELSEWHERE], scope=scope)
    assert statuses(result) == ["MERGED", "APPLIED"]


def test_an_outlet_a_device_creates_is_in_its_reps_scope_and_not_in_anothers():
    created = plan([change(OUTLET, "o5", {"name": "Kedai Baru"}), visit_at("o5")])
    assert statuses(created) == ["MERGED", "APPLIED"]
    outlet_record = created.writes[(OUTLET, "o5")].record
    assert (outlet_record.created_by_rep, assigned_reps(outlet_record)) == ("rep1", ["rep1"])
    other_device = Actor(writer="dev7", rep_id="rep1", device_id="dev7")
    assert statuses(plan([change(OUTLET, "o5", {"phone": "2"})], [outlet_record], actor=other_device)) == ["MERGED"]
    other_rep = Actor(writer="dev8", rep_id="rep2", device_id="dev8")
    result = plan([change(OUTLET, "o5", {"phone": "2"})], [outlet_record], actor=other_rep)
    assert result.outcomes[0].refusal.code == "OUT_OF_SCOPE"  # type: ignore[union-attr]
    manager_edit = manager_write("o5", {"phone": "3"}, outlet_record).record
    assert manager_edit is not None and manager_edit.created_by_rep == "rep1"  # the creator stays


def test_an_owned_record_pointing_at_an_outlet_outside_the_scope_is_refused_naming_the_outlet():
    result = plan([visit_at("o9"), visit_at("o1", "v2")], [ELSEWHERE, MINE])
    assert statuses(result) == ["REFUSED", "BLOCKED"]
    refusal = result.outcomes[0].refusal
    assert refusal is not None
    assert (refusal.code, refusal.action, refusal.field, refusal.related) == (
        "OUTLET_NOT_ASSIGNED",
        FIX,
        "outletId",
        (OUTLET, "o9"),
    )
    assert "outlet o9" in refusal.reason and "Kedai Siti" not in refusal.reason


def test_devices_cannot_write_rep_ids_by_patch_or_by_yjs_update_but_managers_can():
    patched = plan([change(OUTLET, "o1", {"repIds": ["rep1", "rep3"]}), visit_at("o1")], [MINE])
    assert statuses(patched) == ["REFUSED", "APPLIED"]  # acknowledge: blocks nothing
    refusal = patched.outcomes[0].refusal
    assert refusal is not None and (refusal.code, refusal.action, refusal.field) == ("READ_ONLY_FIELD", ACK, "repIds")
    by_yjs = plan([change(OUTLET, "o5", crdt_update=yjs_update(name="Baru", repIds=["rep1", "rep3"]))])
    assert by_yjs.outcomes[0].refusal.code == "READ_ONLY_FIELD"  # type: ignore[union-attr]
    assert by_yjs.writes == {}
    manager = manager_write("o1", {"repIds": ["rep1", "rep3"]}, MINE).record
    assert manager is not None and assigned_reps(manager) == ["rep1", "rep3"]
    assert manager_write("o1", {"repIds": ["rep3"]}, manager).left_scope_of == ("rep1",)  # unassigned: it leaves


def test_rep_ids_must_be_a_list_of_distinct_ids():
    for bad in ("rep1", ["rep1", "rep1"], ["rep1", ""], [7]):
        verdict = manager_write("o1", {"repIds": bad}, MINE).verdict
        assert verdict is not None and str(verdict.field).startswith("repIds"), bad


def test_with_access_all_reps_change_and_reference_every_outlet():
    scope = Scope("rep1", OutletAccess.ALL)
    result = plan([change(OUTLET, "o9", {"phone": "1"}), visit_at("o9")], [ELSEWHERE], scope=scope)
    assert statuses(result) == ["MERGED", "APPLIED"]
    assert result.outcomes[0].record is not None
    assert plan([change(OUTLET, "o9", {"repIds": []})], [ELSEWHERE], scope=scope).outcomes[0].status is (
        ChangeStatus.REFUSED
    )


def test_a_retry_answers_without_the_outlet_once_it_has_left_the_scope():
    sent = change(OUTLET, "o9", {"phone": "1"}, offline_id="done")
    receipt = Receipt("dev1", "done", ChangeStatus.MERGED, 1, T0, OUTLET, "o9", 1, digest=sent.digest)
    result = plan([sent], [ELSEWHERE], receipts=[receipt])
    assert statuses(result) == ["DUPLICATE"]
    assert result.outcomes[0].record is None and result.outcomes[0].crdt_diff is None
