"""The reference device: the sync behaviour a mobile app should copy (docs/device-client.md).

A ``Device`` keeps everything a phone keeps in one JSON file, rewritten whole (write, then
rename) after every change to it, so the app can be killed at any moment:

- ``queue``: the offline changes not yet decided, oldest first (refused ones first);
- ``server``: each record as the server last sent it (``version``, ``fields``);
- ``outlets``: each shared outlet as a Yjs document (pycrdt), edited through Yjs updates, and
  ``outletEpochs``: the server's ``crdtEpoch`` each document belongs to (a new one: start over);
- ``photos``: photos taken offline and not yet sent (their bytes in a folder beside the file);
- ``cursor``: where the next pull starts;
- ``decided`` / ``dropped``: the outcome of every change the device let go of.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map, Text

from fieldsync_client.photos import PhotoUploads
from fieldsync_client.transport import Transport
from fieldsync_client.yjs_edits import edit_update

OUTLET = "OUTLET"
FINAL = {"APPLIED", "MERGED", "UNCHANGED"}
BATCH = 100
PHOTO_CHUNK = 256 * 1024  # bytes per tus PATCH: small enough to lose little when the signal drops

ENVELOPE = "recordType recordId version deleted fields crdtState crdtEpoch outOfScope"
CONFLICT = "id recordType recordId status serverVersion deviceFields serverFields changedFields"
REFUSAL = "id code reason action status note"
PUSH = f"""mutation($input: PushInput!) {{ pushChanges(input: $input) {{ syncId results {{
  offlineId status duplicateOf blockedBy record {{ {ENVELOPE} }}
  conflict {{ {CONFLICT} }} refusal {{ {REFUSAL} }} }} }} }}"""
PULL = f"""query($deviceId: ID!, $since: String, $limit: Int) {{
  pull(deviceId: $deviceId, since: $since, limit: $limit) {{ cursor hasMore records {{ {ENVELOPE} }} }} }}"""
RESOLVE = f"""mutation($input: ResolveConflictInput!) {{ resolveConflict(input: $input) {{
  conflict {{ status }} record {{ {ENVELOPE} }} refusal {{ code }} }} }}"""
ACKNOWLEDGE = "mutation($id: ID!) { acknowledgeRefusal(id: $id) { status } }"
STATUS = "mutation($input: DeviceStatusInput!) { reportDeviceStatus(input: $input) { id } }"

Resolution = str | None  # "OVERWRITE", "DISCARD", or None: leave the conflict open (a manager decides)
ConflictPrompt = Callable[[dict[str, Any]], Resolution]


def leave_open(conflict: dict[str, Any]) -> Resolution:
    return None


@dataclass
class SyncStats:
    """What one ``sync()`` did."""

    pushes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    conflicts: int = 0
    refusals: int = 0
    pulled: int = 0
    removed: int = 0
    photos_sent: int = 0
    photos_refused: dict[str, int] = field(default_factory=dict)  # attachmentId -> HTTP status

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


class Device:
    def __init__(
        self,
        transport: Transport,
        device_id: str,
        state_path: Path,
        *,
        on_conflict: ConflictPrompt = leave_open,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC).astimezone(),
        yjs_client_id: int | None = None,
        clock_is_real: bool = True,
    ) -> None:
        """``clock_is_real``: False for a phone living in simulated time, which must not send it as ``sentAt``."""
        self.transport = transport
        self.device_id = device_id
        self.path = Path(state_path)
        self.on_conflict = on_conflict
        self.clock = clock
        self.clock_is_real = clock_is_real
        if self.path.exists():
            self.state = json.loads(self.path.read_text())
            self.state.setdefault("outletEpochs", {})  # files written before epochs existed
            self.state.setdefault("photos", {})
        else:
            self.state = {
                "deviceId": device_id,
                "yjsClientId": yjs_client_id if yjs_client_id is not None else _new_client_id(),
                "nextSeq": 1,
                "cursor": None,
                "queue": [],
                "server": {},
                "outlets": {},
                "outletEpochs": {},
                "photos": {},
                "decided": {},
                "dropped": {},
            }
        self.docs: dict[str, Doc] = {}
        for outlet_id, encoded in self.state["outlets"].items():
            self._doc(outlet_id).apply_update(base64.b64decode(encoded))
        photo_folder = self.path.with_name(f"{self.path.stem}-photos")
        self.photos = PhotoUploads(transport, photo_folder, self.state["photos"], PHOTO_CHUNK)

    # -- what the rep does, offline ------------------------------------------------

    def take_photo(self, data: bytes, **geo: float) -> dict[str, Any]:
        """Keep a photo until it is sent; the entry a record's ``photos`` list points at it with."""
        attachment_id = str(uuid.uuid4())
        sha256 = self.photos.keep(attachment_id, data)
        self._save()
        return {"attachmentId": attachment_id, "sha256": sha256, "capturedAt": self.clock().isoformat(), **geo}

    def save(self, record_type: str, record_id: str, fields: dict[str, Any], **geo: float) -> str:
        """Queue an owned record (visit, order, work order) as the device now has it, whole."""
        return self._enqueue(record_type, record_id, "UPSERT", {"fields": fields, **geo})

    def delete(self, record_type: str, record_id: str) -> str:
        return self._enqueue(record_type, record_id, "DELETE", {})

    def edit_outlet(
        self,
        outlet_id: str,
        fields: dict[str, Any] | None = None,
        *,
        add_tags: tuple[str, ...] = (),
        remove_tags: tuple[str, ...] = (),
        append_notes: str = "",
        **geo: float,
    ) -> str:
        """Edit (or create) an outlet in its Yjs document and queue the update that edit made."""
        doc = self._doc(outlet_id)

        def edit() -> None:
            for key, value in (fields or {}).items():
                doc.get("fields", type=Map)[key] = value
            for tag in add_tags:
                doc.get("tags", type=Map)[tag] = True
            for tag in remove_tags:
                tags = doc.get("tags", type=Map)
                if tag in tags:
                    del tags[tag]
            if append_notes:
                notes = doc.get("notes", type=Text)
                notes += append_notes

        update = edit_update(doc, edit)
        self.state["outlets"][outlet_id] = _b64(doc.get_update())
        epoch = self.state["outletEpochs"].get(outlet_id, 0)
        return self._enqueue(OUTLET, outlet_id, "UPSERT", {"crdtUpdate": _b64(update), "crdtEpoch": epoch, **geo})

    def view(self, record_type: str, record_id: str) -> dict[str, Any] | None:
        """The record as the rep sees it: its latest queued edit, else the server's copy."""
        if record_type == OUTLET:
            return outlet_fields(self.docs[record_id]) if record_id in self.docs else None
        for change in reversed(self.state["queue"]):
            if (change["recordType"], change["recordId"]) == (record_type, record_id):
                return None if change["operation"] == "DELETE" else change["fields"]
        held = self.state["server"].get(_key(record_type, record_id))
        return held["fields"] if held else None

    def records(self, record_type: str) -> dict[str, dict[str, Any]]:
        """The server's copy of every record of a type the device holds."""
        prefix = record_type + "/"
        return {k.removeprefix(prefix): v for k, v in self.state["server"].items() if k.startswith(prefix)}

    def close(self) -> None:
        self.transport.close()

    @property
    def queue(self) -> list[dict[str, Any]]:
        return self.state["queue"]

    # -- sync ----------------------------------------------------------------------

    def sync(self) -> SyncStats:
        """Push the queue until it drains or waits on someone, pull what changed, then send the photos."""
        stats = SyncStats()
        while self.queue:
            if not self._push(stats):
                break
        if self.queue:
            self.transport.execute(STATUS, {"input": {"deviceId": self.device_id, "queueDepth": len(self.queue)}})
        self.pull(stats)
        stats.photos_sent, stats.photos_refused = self.photos.upload_pending(self._save)
        return stats

    def _push(self, stats: SyncStats) -> bool:
        """One push of the queue's head; True when another push could decide more."""
        batch = self.queue[:BATCH]
        changes = [{k: v for k, v in c.items() if not k.startswith("_")} for c in batch]
        for change in changes:
            outlet_id = change["recordId"]
            held_epoch = self.state["outletEpochs"].get(outlet_id, 0)
            if change["recordType"] == OUTLET and outlet_id in self.docs and change.get("crdtEpoch") == held_epoch:
                change["stateVector"] = _b64(self.docs[outlet_id].get_state())
        data = self.transport.execute(
            PUSH,
            {
                "input": {
                    "deviceId": self.device_id,
                    "changes": changes,
                    "queueDepth": len(self.queue) - len(batch),
                    "sentAt": self.clock().isoformat() if self.clock_is_real else None,
                }
            },
        )
        stats.pushes += 1
        held, refused, resolved = [], [], False
        for change, result in zip(batch, data["pushChanges"]["results"], strict=True):
            stats.count(result["status"])
            keep, was_resolved = self._decide(change, result, stats)
            resolved |= was_resolved
            if keep == "refused":
                refused.append(change)
            elif keep == "held":
                held.append(change)
        drained = not held and not refused
        self.state["queue"] = refused + held + self.queue[len(batch) :]  # refused changes go first next time
        self._save()
        return resolved or (drained and bool(self.queue))

    def _decide(self, change: dict[str, Any], result: dict[str, Any], stats: SyncStats) -> tuple[str | None, bool]:
        """What to do with one change after its answer: (keep it as "refused"/"held" or drop it, resolved)."""
        status = result["duplicateOf"] if result["status"] == "DUPLICATE" else result["status"]
        offline_id = change["offlineId"]
        if status in FINAL:
            self._take(result["record"])
            self.state["decided"][offline_id] = status
            return None, False
        if status == "CONFLICT":
            stats.conflicts += 1
            conflict = result["conflict"]
            if conflict["status"] != "OPEN":  # a manager resolved it: the next pull brings the record
                self.state["decided"][offline_id] = status
                return None, False
            resolution = self.on_conflict(conflict)
            if resolution is None:
                return "held", False
            answer = self.transport.execute(
                RESOLVE, {"input": {"conflictId": conflict["id"], "resolution": resolution}}
            )
            if answer["resolveConflict"]["refusal"]:
                return "held", False
            self._take(answer["resolveConflict"]["record"])
            self.state["decided"][offline_id] = status
            return None, True
        if status == "REFUSED":
            stats.refusals += 1
            refusal = result["refusal"]
            if refusal["status"] == "OPEN" and refusal["action"] == "ACKNOWLEDGE":
                refusal["status"] = self.transport.execute(ACKNOWLEDGE, {"id": refusal["id"]})["acknowledgeRefusal"][
                    "status"
                ]
            if refusal["status"] in ("DISMISSED", "ACKNOWLEDGED"):
                self.state["dropped"][offline_id] = refusal["status"]
                return None, False
            return "refused", False
        return "held", False  # BLOCKED

    def pull(self, stats: SyncStats | None = None) -> None:
        """Pull by cursor until the server has nothing more; records out of scope are removed."""
        stats = stats or SyncStats()
        while True:
            answer = self.transport.execute(
                PULL, {"deviceId": self.device_id, "since": self.state["cursor"], "limit": 500}
            )["pull"]
            for envelope in answer["records"]:
                stats.pulled += 1
                if envelope["outOfScope"]:
                    stats.removed += 1
                    self._remove(envelope["recordType"], envelope["recordId"])
                else:
                    self._take(envelope)
            self.state["cursor"] = answer["cursor"]
            self._save()
            if not answer["hasMore"]:
                return

    # -- state -----------------------------------------------------------------------

    def _enqueue(self, record_type: str, record_id: str, operation: str, content: dict[str, Any]) -> str:
        offline_id = f"{self.device_id}:{self.state['nextSeq']}"
        self.state["nextSeq"] += 1
        change = {
            "offlineId": offline_id,
            "recordType": record_type,
            "recordId": record_id,
            "operation": operation,
            "capturedAt": self.clock().isoformat(),
            **{k: v for k, v in content.items() if v is not None},
        }
        if record_type != OUTLET:
            change["baseVersion"] = self._base_version(record_type, record_id)
        self.queue.append(change)
        self._save()
        return offline_id

    def _base_version(self, record_type: str, record_id: str) -> int | None:
        """The version the rep's edit was made on: that of its first queued edit, else the server's."""
        for queued in self.queue:
            if (queued["recordType"], queued["recordId"]) == (record_type, record_id):
                base = queued.get("baseVersion")
                return 0 if base is None else base  # on its own queued create: made on version 0
        held = self.state["server"].get(_key(record_type, record_id))
        return held["version"] if held else None

    def _take(self, envelope: dict[str, Any] | None) -> None:
        if envelope is None:
            return
        outlet_id, epoch = envelope["recordId"], envelope.get("crdtEpoch") or 0
        held_epoch = self.state["outletEpochs"].get(outlet_id, 0)
        if envelope["recordType"] == OUTLET and envelope["crdtState"] and epoch >= held_epoch:  # any order
            if epoch > held_epoch:
                # The server compacted the outlet: start over from its state, with a new Yjs client id.
                # Edits still queued were made on the old epoch and say so; the server merges them.
                self.docs.pop(outlet_id, None)
                self.state["yjsClientId"] = _new_client_id()
                self.state["outletEpochs"][outlet_id] = epoch
            doc = self._doc(outlet_id)
            doc.apply_update(base64.b64decode(envelope["crdtState"]))
            self.state["outlets"][outlet_id] = _b64(doc.get_update())
        key = _key(envelope["recordType"], envelope["recordId"])
        held = self.state["server"].get(key)
        if held and held["version"] > envelope["version"]:
            return  # an older answer (a retried push) than what the device already has
        if envelope["deleted"] and envelope["recordType"] != OUTLET:
            self.state["server"].pop(key, None)
        else:
            self.state["server"][key] = {"version": envelope["version"], "fields": envelope["fields"]}

    def _remove(self, record_type: str, record_id: str) -> None:
        self.state["server"].pop(_key(record_type, record_id), None)
        if record_type == OUTLET:
            self.state["outlets"].pop(record_id, None)
            self.state["outletEpochs"].pop(record_id, None)
            self.docs.pop(record_id, None)

    def _doc(self, outlet_id: str) -> Doc:
        if outlet_id not in self.docs:
            doc: Doc = Doc(client_id=self.state["yjsClientId"])
            doc.get("fields", type=Map)
            doc.get("tags", type=Map)
            doc.get("notes", type=Text)
            self.docs[outlet_id] = doc
        return self.docs[outlet_id]

    def _save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state, sort_keys=True))
        os.replace(temporary, self.path)


def _new_client_id() -> int:
    return int.from_bytes(os.urandom(4)) >> 1


def outlet_fields(doc: Doc) -> dict[str, Any]:
    """An outlet's Yjs document as the server materializes it: fields, sorted tags, notes."""
    fields = {key: _plain(value) for key, value in sorted(doc.get("fields", type=Map).to_py().items())}
    tags = doc.get("tags", type=Map)
    fields["tags"] = sorted(tag for tag in tags if tags[tag] is True)
    fields["notes"] = str(doc.get("notes", type=Text))
    return fields


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _key(record_type: str, record_id: str) -> str:
    return f"{record_type}/{record_id}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
