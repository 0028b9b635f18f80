"""Deciding one change: current record + change + context -> decision. Pure, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crdt import CrdtDecodeError, CrdtIncompleteError, CrdtLayoutError, Frontier, Stamp
from service.domain.changes import Change, Operation
from service.domain.document_cache import WorkingDocuments, frontiers_of
from service.domain.frozen import evolve
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import POLICY, FieldError, Policy, RecordType, check_fields, check_tags
from service.domain.records import Record, RecordKey
from service.domain.refusals import RefusalAction, Verdict
from service.domain.rules import RuleSettings, check_data, check_shape
from service.domain.scope import Scope, reps_unassigned
from service.domain.scope_exits import owners_left

ACK = RefusalAction.ACKNOWLEDGE
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Actor:
    """Who writes: a rep's device, or a person on the web (rep_id None: not bound to a rep)."""

    writer: str  # device id, or "user:<id>"
    rep_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class Decision:
    status: ChangeStatus
    record: Record | None = None  # the record after the change, or the one met
    written: bool = False
    verdict: Verdict | None = None
    crdt_diff: bytes | None = None
    left_scope_of: tuple[str, ...] = ()  # reps whose scope the written record leaves


def decide_change(
    change: Change,
    records: Mapping[RecordKey, Record],
    actor: Actor,
    settings: RuleSettings,
    documents: WorkingDocuments,
    now: datetime,
    *,
    left_scope: Mapping[RecordKey, str] | None = None,
    scope: Scope,
) -> Decision:
    """``scope``: what the actor may see and change (``service.domain.scope``); ``left_scope``: records
    that once left the scope of the actor's rep (reassigned away), each with its assignee now, as a
    manager reads it."""
    verdict = check_shape(change, settings, now)
    if verdict is not None:
        return Decision(ChangeStatus.REFUSED, verdict=verdict)
    current = records.get(change.key)
    match POLICY[change.record_type]:
        case Policy.SHARED:
            decision = _decide_shared(change, current, actor, settings, documents, now, scope)
            if not decision.written or decision.record is None:
                return decision
            return dataclasses.replace(decision, left_scope_of=reps_unassigned(current, decision.record))
        case Policy.OWNED:
            return _decide_owned(change, current, records, actor, settings, now, left_scope or {}, scope)
        case Policy.REFERENCE:
            return _decide_reference(change, current, actor, now)


def _refused(code: str, reason: str, field: str | None = None) -> Decision:
    return Decision(ChangeStatus.REFUSED, verdict=Verdict(code, reason, ACK, field=field))


def _new_version(
    change: Change,
    current: Record | None,
    actor: Actor,
    now: datetime,
    fields: dict[str, Any],
    *,
    deleted: bool,
    owner: str | None = None,
    crdt_state: bytes | None = None,
) -> Record:
    """The record's next version, written by ``actor``."""
    version = (current.version if current else 0) + 1
    same_writer = current is not None and current.updated_by == actor.writer
    return Record(
        type=change.record_type,
        id=change.record_id,
        version=version,
        fields=fields,
        updated_at=now,
        updated_by=actor.writer,
        deleted=deleted,
        owner=owner,
        crdt_state=crdt_state,
        writer_since=current.writer_since if current is not None and same_writer else version,
        created_by_rep=current.created_by_rep if current is not None else actor.rep_id,
    )


def _decide_owned(
    change: Change,
    current: Record | None,
    records: Mapping[RecordKey, Record],
    actor: Actor,
    settings: RuleSettings,
    now: datetime,
    left_scope: Mapping[RecordKey, str],
    scope: Scope,
) -> Decision:
    deleting = change.operation is Operation.DELETE
    fields = dict(change.fields or {}) if not deleting else dict(current.fields if current else {})
    if actor.rep_id is not None:
        if current is not None and current.owner != actor.rep_id:
            if change.key in left_scope:
                return _reassigned(current, left_scope[change.key])
            return _refused(
                "NOT_OWNER",
                f"{_name(change)} belongs to another rep; this device cannot change it.",
                "repId",
            )
        fields.setdefault("repId", actor.rep_id)
        if fields["repId"] != actor.rep_id:
            return _refused(
                "NOT_OWNER", f"{_name(change)} names rep {fields['repId']}, not this device's rep.", "repId"
            )
    elif current is not None:
        fields.setdefault("repId", current.owner)  # a manager's write keeps the assignee unless it names another
    verdict = scope.check_outlet_references(change, records)
    if verdict is not None:
        return Decision(ChangeStatus.REFUSED, verdict=verdict)
    owner = fields.get("repId")  # ownership follows repId: a manager who writes another reassigns the record
    if not isinstance(owner, str):
        return _refused("MISSING_FIELD", f"{_name(change)} needs the repId of its owner.", "repId")
    if actor.device_id is not None and _locked(current):
        assert current is not None
        return Decision(
            ChangeStatus.REFUSED,
            record=current,
            verdict=Verdict(
                "RECORD_LOCKED",
                f"{current.display_name()} was completed on the server at version {current.version}, "
                "so it is locked and this change cannot be applied. Acknowledge to drop it.",
                ACK,
                field="status",
                related=current.key,
            ),
        )
    if current is not None and current.deleted == deleting and current.fields == fields:
        return Decision(ChangeStatus.UNCHANGED, record=current)  # both sides agree: nothing to prompt about
    if _conflicts(change, current, actor):
        return Decision(ChangeStatus.CONFLICT, record=current)
    verdict = check_data(change, records, settings)
    if verdict is not None:
        return Decision(ChangeStatus.REFUSED, verdict=verdict, record=current)
    record = _new_version(change, current, actor, now, fields, deleted=deleting, owner=owner)
    return Decision(ChangeStatus.APPLIED, record=record, written=True, left_scope_of=owners_left(current, record))


def _reassigned(current: Record, assignee: str) -> Decision:
    return Decision(
        ChangeStatus.REFUSED,
        verdict=Verdict(
            "RECORD_REASSIGNED",
            f"{current.display_name()} was reassigned to {assignee}, so this device's change was not "
            "applied; a manager can still apply what it sent. Acknowledge to drop it.",
            ACK,
            field="repId",
        ),
    )


def _locked(record: Record | None) -> bool:
    return (
        record is not None
        and record.type is RecordType.WORK_ORDER
        and not record.deleted
        and record.fields.get("status") == "COMPLETED"
    )


def _conflicts(change: Change, current: Record | None, actor: Actor) -> bool:
    if change.base_version is None:
        return current is not None  # a create for an id that exists
    if current is None:
        return True  # the device saw a version the server does not have
    if current.version == change.base_version:
        return False
    # A device's queue holds several edits on the version it last saw; its own writes since do not count.
    return actor.device_id is None or not current.written_only_by_since(actor.writer, change.base_version)


def _decide_reference(change: Change, current: Record | None, actor: Actor, now: datetime) -> Decision:
    if actor.device_id is not None:
        return _refused("READ_ONLY", f"{_name(change)} is reference data; devices read it and cannot change it.")
    deleting = change.operation is Operation.DELETE
    fields = dict(current.fields if current and deleting else change.fields or {})
    if current is not None and current.deleted == deleting and current.fields == fields:
        return Decision(ChangeStatus.UNCHANGED, record=current)
    record = _new_version(change, current, actor, now, fields, deleted=deleting)
    return Decision(ChangeStatus.APPLIED, record=record, written=True)


def _decide_shared(
    change: Change,
    current: Record | None,
    actor: Actor,
    settings: RuleSettings,
    documents: WorkingDocuments,
    now: datetime,
    scope: Scope,
) -> Decision:
    """Merge a Yjs update and/or a field patch under the one merge rule (``crdt.field_rule``)."""
    verdict = scope.check_shared_change(change, current)
    if verdict is not None:
        return Decision(ChangeStatus.REFUSED, verdict=verdict)
    if actor.device_id is not None and MANAGER_FIELDS & (change.fields or {}).keys():
        return _read_only(change, sorted(MANAGER_FIELDS & (change.fields or {}).keys())[0])
    patch: dict[str, Any] = dict(change.fields or {})
    if change.operation is Operation.DELETE:
        patch = {"deleted": True}
    notes = patch.pop("notes", None)
    tags = patch.pop("tags", None)
    if notes is not None and (actor.device_id is not None or not isinstance(notes, str)):
        return _refused(
            "INVALID_FIELD",
            f"{_name(change)}: notes are collaborative text; devices change them through a crdtUpdate.",
            "notes",
        )
    version = (current.version if current else 0) + 1
    # A clock running ahead cannot win the future: a write counts as captured when the server got it, at the latest.
    stamp = Stamp(_millis(min(change.captured_at, now)), actor.writer)
    # A device's patch saw its baseVersion; a web write without one saw the current version.
    base = change.base_version if actor.device_id is not None or change.base_version is not None else version - 1
    document = documents.get(change.key, current)
    epoch = current.crdt_epoch if current is not None else 0
    made_on = min(change.made_on_epoch, epoch)  # an epoch the record never had: taken as its current one
    before = document.state() if current is not None else None
    materialized_before = document.materialize() if current is not None else None
    frontiers_before = document.frontiers()
    try:
        if change.crdt_update is not None and made_on < epoch:
            archive = documents.archive((change.key, made_on))
            if archive is None:
                raise CrdtIncompleteError(f"epoch {made_on} of this record is not kept; start again from its crdtState")
            merge = document.merge_archived(archive, change.crdt_update, stamp, version)
        elif change.crdt_update is not None:
            merge = document.merge_update(change.crdt_update, stamp, version)
            if actor.device_id is not None and MANAGER_FIELDS & merge.fields_written:
                documents.discard(change.key)
                return _read_only(change, sorted(MANAGER_FIELDS & merge.fields_written)[0])
        if patch:
            document.write_fields(patch, stamp, version, base)
        if tags is not None:
            document.set_tags(_tag_flags(tags))
        if notes is not None:
            document.replace_notes(notes)
        fields = document.materialize()
        check_fields(change.record_type, {k: v for k, v in fields.items() if k not in ("tags", "notes")}, whole=False)
        check_tags((materialized_before or {}).get("tags", []), fields.get("tags", []))
        if document.worth_compacting(settings.crdt_compact_bytes):
            documents.start_epoch(change.key, epoch, document.state())
            document.compact()
            epoch += 1
        state = document.state()
        # What the device lacks; the whole state for a device on another epoch (it starts over from it).
        diff = document.missing_for(change.state_vector if made_on == epoch else None)
    except CrdtLayoutError as error:
        documents.discard(change.key)
        return _refused("CRDT_LAYOUT", f"{_name(change)}: the CRDT update does not fit the outlet layout ({error}).")
    except CrdtIncompleteError as error:
        documents.discard(change.key)
        return _refused("CRDT_INCOMPLETE", f"{_name(change)}: {error}.", "crdtUpdate")
    except CrdtDecodeError as error:
        documents.discard(change.key)
        return _refused("CRDT_UNDECODABLE", f"{_name(change)}: the CRDT bytes cannot be used ({error}).", "crdtUpdate")
    except FieldError as error:
        documents.discard(change.key)
        return _refused(error.code, f"{_name(change)} would have an invalid field: {error}", error.field)
    except ValueError as error:  # malformed tags in a patch, or a value Yjs cannot hold
        documents.discard(change.key)
        return _refused("INVALID_FIELD", f"{_name(change)}: {error}", "tags" if tags is not None else None)
    grown_past = (
        _grown_past_limits(change, state, before, document.frontiers(), frontiers_before, settings)
        if actor.device_id is not None
        else None
    )
    if grown_past:
        documents.discard(change.key)
        return _refused("TOO_LARGE", grown_past, "crdtUpdate")
    frontiers = frontiers_of(document)
    documents.keep_archives(change.key)
    if current is not None and fields == materialized_before:
        if state == before and document.frontiers() == frontiers_before:
            return Decision(ChangeStatus.UNCHANGED, record=current, crdt_diff=diff)
        # Nothing a reader sees changed, but the rule must remember this write: kept without a new version.
        kept = evolve(current, crdt_state=state, crdt_frontiers=frontiers, crdt_epoch=epoch)
        return Decision(ChangeStatus.UNCHANGED, record=kept, written=True, crdt_diff=diff)
    record = _new_version(change, current, actor, now, fields, deleted=fields.get("deleted") is True, crdt_state=state)
    record = evolve(record, crdt_frontiers=frontiers, crdt_epoch=epoch)
    return Decision(ChangeStatus.MERGED, record=record, written=True, crdt_diff=diff)


MANAGER_FIELDS = frozenset({"repIds"})  # shared fields only managers write


def _grown_past_limits(
    change: Change,
    state: bytes,
    before: bytes | None,
    frontiers: Mapping[str, Frontier],
    frontiers_before: Mapping[str, Frontier],
    settings: RuleSettings,
) -> str | None:
    """Why a device's change would grow a shared record past a limit, or None. Shrinking a record, and a
    manager's fix, always go through: a device may only not grow it further."""
    if len(state) > len(before or b"") and len(state) > settings.max_record_bytes:
        return f"{_name(change)} would grow to {len(state)} bytes; the limit is {settings.max_record_bytes}."
    # Each write nobody has seen yet is kept until one that saw it comes; a device that never syncs,
    # writing from ever new Yjs clients, must not grow that without end (a causal write empties it).
    unseen = sum(map(len, frontiers.values()))
    if unseen > settings.max_unseen_writes and unseen > sum(map(len, frontiers_before.values())):
        return (
            f"{_name(change)} would keep {unseen} writes that no other write has seen (the limit is "
            f"{settings.max_unseen_writes}): pull the outlet and make the edit on what it holds now."
        )
    return None


def _read_only(change: Change, field: str) -> Decision:
    return _refused(
        "READ_ONLY_FIELD",
        f"{_name(change)}: {field} is written by managers only; this device's change was not applied.",
        field,
    )


def _millis(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() * 1000)


def _tag_flags(value: Any) -> dict[str, bool]:
    if isinstance(value, list) and all(isinstance(tag, str) for tag in value):
        return dict.fromkeys(value, True)
    if isinstance(value, dict) and all(isinstance(present, bool) for present in value.values()):
        return dict(value)
    raise ValueError("tags must be a list of tags or an object of tag -> true/false")


def _name(change: Change) -> str:
    return f"{change.record_type.value.replace('_', ' ').title()} {change.record_id}"
