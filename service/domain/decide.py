"""Deciding one change: current record + change + context -> decision. Pure, no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crdt import CrdtDecodeError, FieldStamp, field_patch_update
from service.domain.changes import Change, Operation
from service.domain.document_cache import WorkingDocuments
from service.domain.outcomes import ChangeStatus
from service.domain.record_types import POLICY, FieldError, Policy, RecordType, check_fields
from service.domain.records import Record, RecordKey
from service.domain.refusals import RefusalAction, Verdict
from service.domain.rules import RuleSettings, check_data, check_shape
from service.domain.scope_exits import owners_left

ACK = RefusalAction.ACKNOWLEDGE


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
    left_scope: Collection[RecordKey] = (),
) -> Decision:
    """``left_scope``: records that once left the scope of the actor's rep (reassigned away)."""
    verdict = check_shape(change, settings, now)
    if verdict is not None:
        return Decision(ChangeStatus.REFUSED, verdict=verdict)
    current = records.get(change.key)
    match POLICY[change.record_type]:
        case Policy.SHARED:
            return _decide_shared(change, current, actor, settings, documents, now)
        case Policy.OWNED:
            return _decide_owned(change, current, records, actor, settings, now, left_scope)
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
    )


def _decide_owned(
    change: Change,
    current: Record | None,
    records: Mapping[RecordKey, Record],
    actor: Actor,
    settings: RuleSettings,
    now: datetime,
    left_scope: Collection[RecordKey],
) -> Decision:
    deleting = change.operation is Operation.DELETE
    fields = dict(change.fields or {}) if not deleting else dict(current.fields if current else {})
    if actor.rep_id is not None:
        if current is not None and current.owner != actor.rep_id:
            if change.key in left_scope:
                return _reassigned(change, current)
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
    verdict = check_data(dataclasses.replace(change, fields=fields), records, settings)
    if verdict is not None:
        return Decision(ChangeStatus.REFUSED, verdict=verdict, record=current)
    record = _new_version(change, current, actor, now, fields, deleted=deleting, owner=owner)
    return Decision(ChangeStatus.APPLIED, record=record, written=True, left_scope_of=owners_left(current, record))


def _reassigned(change: Change, current: Record) -> Decision:
    return Decision(
        ChangeStatus.REFUSED,
        verdict=Verdict(
            "RECORD_REASSIGNED",
            f"{current.display_name()} was reassigned to rep {current.owner}, so this device's change was not "
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
) -> Decision:
    patch: dict[str, Any] = dict(change.fields or {})
    if change.operation is Operation.DELETE:
        patch = {"deleted": True}
    notes = patch.pop("notes", None)
    if notes is not None and (actor.device_id is not None or not isinstance(notes, str)):
        return _refused(
            "INVALID_FIELD",
            f"{_name(change)}: notes are collaborative text; devices change them through a crdtUpdate.",
            "notes",
        )
    document = documents.get(change.key, current)
    try:
        changed = False
        if change.crdt_update is not None:
            changed |= document.apply(change.crdt_update)
        if patch:
            stamp = FieldStamp(change.captured_at, actor.writer)
            while document.knows_client(stamp.client_id()):  # same millisecond and device bits as a patch before
                stamp = FieldStamp(stamp.captured_at + timedelta(milliseconds=1), stamp.device_id)
            changed |= document.apply(field_patch_update(patch, stamp))
        if notes is not None and notes != document.materialize()["notes"]:
            document.replace_notes(notes)
            changed = True
        fields = document.materialize()
        check_fields(change.record_type, {k: v for k, v in fields.items() if k not in ("tags", "notes")}, whole=False)
        state = document.state()
        diff = document.missing_for(change.state_vector)
    except CrdtDecodeError as error:
        documents.discard(change.key)
        return _refused("CRDT_UNDECODABLE", f"{_name(change)}: the CRDT bytes cannot be used ({error}).", "crdtUpdate")
    except FieldError as error:
        documents.discard(change.key)
        return _refused(error.code, f"{_name(change)} would have an invalid field: {error}", error.field)
    except ValueError as error:  # malformed tags in a patch
        documents.discard(change.key)
        return _refused("INVALID_FIELD", f"{_name(change)}: {error}", "tags")
    if len(state) > settings.max_record_bytes:
        documents.discard(change.key)
        return _refused(
            "TOO_LARGE",
            f"{_name(change)} would grow to {len(state)} bytes; the limit is {settings.max_record_bytes}.",
            "crdtUpdate",
        )
    if not changed:
        return Decision(ChangeStatus.UNCHANGED, record=current, crdt_diff=diff)
    record = _new_version(change, current, actor, now, fields, deleted=fields.get("deleted") is True, crdt_state=state)
    return Decision(ChangeStatus.MERGED, record=record, written=True, crdt_diff=diff)


def _name(change: Change) -> str:
    return f"{change.record_type.value.replace('_', ' ').title()} {change.record_id}"
