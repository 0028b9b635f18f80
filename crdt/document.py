"""The Yjs document of a shared record and the operations the server needs on it.

Layout (the protocol's contract with devices): a Map ``fields`` of scalar fields
by name, a Map ``tags`` (tag -> true; a deleted key or a false value is not a
tag) and a Text ``notes``.

Tags and notes merge as Yjs merges them. Scalar fields follow the merge rule of
``crdt.field_rule`` whoever writes them: the document keeps each field's
frontier of writes beside the Yjs state, takes device updates in whole, and
where Yjs' own tie-break (the greater client id) picked another value than
the rule, writes the rule's winner as a causal server edit. Patches and web
writes become server edits when they win and change nothing when they lose.
All server edits come from one client id, so the state grows with content
and writers, not with the number of edits.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from pycrdt import Doc, Map, Text

from crdt._varints import state_vector_clock  # native: every merge looks clocks up in the state vector
from crdt.field_rule import (
    SERVER_CLIENT,
    Frontier,
    Stamp,
    Write,
    merged,
    plain_number,
    same_value,
    seen_at_version,
    seen_by_item,
    winner,
)
from crdt.text_edits import TextEdit, text_edits
from crdt.yjs_update import (
    ANY,
    DELETED,
    JSON_CONTENT,
    Item,
    ItemId,
    Update,
    UpdateFormatError,
    decode_update,
    gc_runs,
)
from crdt.yrs_core import YrsCore

FIELDS, TAGS, NOTES = "fields", "tags", "notes"
COMPACTED = "(compacted history)"  # where the key index puts clocks compaction turned into GC runs
MISSING_HISTORY = (
    "the update depends on changes the server does not have: send it against the server's state vector "
    "(or, if the record was compacted since, with the crdtEpoch it was made on)"
)
COMPACTED_HISTORY = (
    "the update builds on history the server has compacted; start again from the record's crdtState "
    "and send the crdtEpoch each update was made on"
)
_MAP_ROOTS = (FIELDS, TAGS)
_YRS_JSON = json.JSONDecoder()
_SCALARS = (str, int, float, bool, type(None))


class CrdtDecodeError(ValueError):
    """Bytes that are not a Yjs v1 update (or state vector) this layout can use."""


class CrdtLayoutError(CrdtDecodeError):
    """An update whose types do not match the layout (e.g. ``fields`` written as text)."""


class CrdtIncompleteError(CrdtDecodeError):
    """An update that depends on operations the server never received."""


class Merge(NamedTuple):
    """What one update did: whether the stored state changed, and the fields it wrote."""

    changed: bool
    fields_written: frozenset[str]


class SharedDocument:
    """One shared record's Yjs document with the frontier of each scalar field."""

    def __init__(self, state: bytes | None = None, frontiers: Mapping[str, Iterable[Write]] | None = None) -> None:
        self._load(state, {key: tuple(writes) for key, writes in (frontiers or {}).items()})

    def _load(self, state: bytes | None, frontiers: dict[str, Frontier]) -> None:
        self._doc: Doc = Doc(client_id=SERVER_CLIENT)
        self._fields = self._doc.get(FIELDS, type=Map)
        self._tags = self._doc.get(TAGS, type=Map)
        self._notes = self._doc.get(NOTES, type=Text)
        self._core = YrsCore(self._doc, self._fields, self._tags, self._notes)
        if state:
            try:
                self._core.apply(state)
            except BaseException as error:  # pycrdt raises a Rust panic (BaseException) on garbage
                if isinstance(error, (KeyboardInterrupt, SystemExit)):
                    raise
                raise CrdtDecodeError(f"not a Yjs update: {error}") from None
        self._frontiers = frontiers
        self._keys: _KeyIndex | None = None  # built when a device update first needs it
        # What was read of the Doc, kept until it changes (``_changed``):
        self._encoded: bytes | None = state or None  # the state, encoded
        self._reading: _Reading | None = None  # the state vector, the fields and the record

    def _changed(self) -> None:
        """Forget what was read of the Doc. Every change to it is an update taken in (``_take_in``) or a
        server edit (``_server_edit``), and both call this; an observer on the Doc, which pycrdt calls
        after every transaction, cost more than the reads it saved."""
        self._encoded = self._reading = None

    def _read(self) -> _Reading:
        """The state vector, the fields and the record, read in one transaction once per change (pycrdt's
        wrappers would open one for each read), and kept until the next change."""
        if self._reading is None:
            self._reading = _reading_of(*self._core.read())
        return self._reading

    # -- reading -----------------------------------------------------------

    def state(self) -> bytes:
        """The whole document, compacted, as one Yjs update."""
        if self._encoded is None:
            self._encoded = self._core.encoded()
        return self._encoded

    def state_vector(self) -> bytes:
        return self._doc.get_state()

    def _clock(self, client: int) -> int:
        """The client's next clock (0 for a client the document has nothing of)."""
        return state_vector_clock(self._read().state_vector, client)

    def frontiers(self) -> dict[str, Frontier]:
        return dict(self._frontiers)

    def missing_for(self, state_vector: bytes | None) -> bytes:
        """What a replica with this state vector lacks (everything when None)."""
        if state_vector is None:
            return self.state()
        try:
            return self._core.encoded(state_vector)
        except BaseException as error:
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            raise CrdtDecodeError(f"not a Yjs state vector: {error}") from None

    def materialize(self) -> dict[str, Any]:
        """The record as plain JSON: fields (integral numbers as integers), sorted tags, notes."""
        record = self._read().record
        return {**record, "tags": list(record["tags"])}  # the caller's to change

    def _shown_fields(self) -> dict[str, Any]:
        """The fields map as the document shows it, read once per change (Yrs writes it as JSON natively)."""
        return self._read().shown

    # -- writing -----------------------------------------------------------

    def merge_update(self, update: bytes, stamp: Stamp, version: int) -> Merge:
        """Take in a device's Yjs update, then hold every field it wrote to the merge rule.

        All or nothing: an update that is refused leaves the document as it was.
        """
        saved = self.state(), dict(self._frontiers)
        try:
            shown = self._shown_fields()  # as it was: read by the last change's record, usually
            taken = self._integrate(update)
            self._take_writes(taken, stamp, version, taken.horizon, shown)
            self._enforce(taken.fields_written)
        except BaseException:
            self._load(*saved)  # the key index is built again when next needed
            raise
        return Merge(self.state() != saved[0] or self._frontiers != saved[1], frozenset(taken.fields_written))

    def merge_archived(self, archive: SharedDocument, update: bytes, stamp: Stamp, version: int) -> Merge:
        """Take in an update made on an earlier epoch of this document, kept as ``archive``.

        The update joins the archive, where the items it builds on are. What it changed there is
        written here: its field writes under the merge rule (what they saw is known by item ids,
        which compaction keeps), its tag and notes edits as server edits. All or nothing, for both.
        """
        saved, archived = (self.state(), dict(self._frontiers)), (archive.state(), dict(archive._frontiers))
        try:
            tags, notes = archive._tag_set(), str(archive._notes)
            taken = archive._integrate(update)
            self._take_writes(taken, stamp, version, self._clock(SERVER_CLIENT), self._shown_fields())
            self._enforce(taken.fields_written)
            after = archive._tag_set()
            self.set_tags({**dict.fromkeys(tags - after, False), **dict.fromkeys(after - tags, True)})
            self._edit_notes(text_edits(notes, str(archive._notes), str(self._notes)))
        except BaseException:
            self._load(*saved)
            archive._load(*archived)
            raise
        return Merge(self.state() != saved[0] or self._frontiers != saved[1], frozenset(taken.fields_written))

    def worth_compacting(self, threshold: int) -> bool:
        """The state is past ``threshold`` bytes and mostly history: over twice the size of its content."""
        size = len(self.state())
        if size <= threshold:
            return False
        return size > 2 * len(materialize_json(self))

    def compact(self) -> None:
        """Drop the history: the server writes the content again in a new document, its own clocks
        going on from where they were (one GC run), so the state holds the content and nothing else.

        Replicas of the old document cannot merge with the new one: they start over from it, with a
        new client id (the protocol's ``crdtEpoch``). Frontiers are kept: they name writes by item
        id and the server's clock, which the new document never reuses.
        """
        fields = {key: self._fields[key] for key in sorted(self._fields)}
        tags, notes = sorted(self._tag_set()), str(self._notes)
        doc: Doc = Doc(client_id=SERVER_CLIENT)
        doc.apply_update(gc_runs({SERVER_CLIENT: self._clock(SERVER_CLIENT)}))
        new_fields, new_tags, new_notes = doc.get(FIELDS, type=Map), doc.get(TAGS, type=Map), doc.get(NOTES, type=Text)
        with doc.transaction():
            for key, value in fields.items():
                new_fields[key] = _plain(value)
            for tag in tags:
                new_tags[tag] = True
            if notes:
                new_notes += notes
        self._load(doc.get_update(), self._frontiers)

    def write_fields(self, patch: Mapping[str, Any], stamp: Stamp, version: int, base_version: int | None) -> None:
        """A plain patch (a device's, or a web write) of scalar fields, made on ``base_version``."""
        horizon = self._clock(SERVER_CLIENT)
        saw, shown = seen_at_version(base_version), self._shown_fields()
        for key, value in patch.items():
            self._take(key, Write(plain_number(value), stamp, version, horizon), saw, shown)
        self._enforce(patch)

    def set_tags(self, flags: Mapping[str, bool]) -> None:
        """A server edit of tags: add (True) or remove (False) each one."""
        added = [tag for tag, present in flags.items() if present and self._tags.get(tag) is not True]
        removed = [tag for tag, present in flags.items() if not present and tag in self._tags]
        with self._server_edit(TAGS, added):
            for tag in added:
                self._tags[tag] = True
            for tag in removed:
                del self._tags[tag]

    def replace_notes(self, text: str) -> None:
        """A server edit of the collaborative notes (whole-text replacement)."""
        if str(self._notes) == text:
            return
        with self._server_edit(NOTES, [None] if text else []):
            del self._notes[:]
            self._notes += text

    def _edit_notes(self, edits: list[TextEdit]) -> None:
        """Server edits of the notes at given places, the last place first."""
        if not edits:
            return
        with self._server_edit(NOTES, [None] if any(edit.insert for edit in edits) else []):
            for edit in edits:
                if edit.delete:
                    del self._notes[edit.at : edit.at + edit.delete]
                if edit.insert:
                    self._notes.insert(edit.at, edit.insert)

    def _tag_set(self) -> set[str]:
        return {tag for tag in self._tags if self._tags[tag] is True}

    # -- the rule ----------------------------------------------------------

    def _take_writes(
        self, taken: _Integrated, stamp: Stamp, version: int, horizon: int, shown: Mapping[str, Any]
    ) -> None:
        for key, item, value in taken.writes:
            write = Write(value, stamp, version, horizon, item.id)
            self._take(key, write, seen_by_item(item.id, item.origin), shown)

    def _take(self, key: str, write: Write, saw: Any, shown: Mapping[str, Any]) -> None:
        """``shown``: the fields as the document showed them before this change."""
        frontier = self._frontiers.get(key)
        if frontier is None:  # a value from before frontiers were kept: any write beats it
            frontier = (Write(shown[key], Stamp(-1, ""), 0, 0),) if key in shown else ()
        self._frontiers[key] = merged(frontier, write, saw)

    def _enforce(self, keys: Iterable[str]) -> None:
        """Where the document shows another value than the rule's winner, write the winner."""
        wrong, shown = {}, self._shown_fields()
        for key in keys:
            best = winner(self._frontiers.get(key, ()))
            if best is not None and (key not in shown or not same_value(shown[key], best.value)):
                wrong[key] = best.value
        if wrong:
            with self._server_edit(FIELDS, list(wrong)):
                for key, value in wrong.items():
                    self._fields[key] = value

    @contextmanager
    def _server_edit(self, root: str, keys: Iterable[str | None]) -> Iterator[None]:
        """One transaction of server writes, each one clock of the server's (text: one per character)."""
        clock = self._clock(SERVER_CLIENT)
        try:
            with self._doc.transaction():
                yield
        finally:
            self._changed()
        if self._keys is not None:
            for key in keys:
                after = self._clock(SERVER_CLIENT) if key is None else clock + 1
                self._keys.add(SERVER_CLIENT, clock, after - clock, root, key)
                clock = after

    # -- taking an update in -------------------------------------------------

    def _key_index(self) -> _KeyIndex:
        if self._keys is None:
            self._keys = _KeyIndex()
            state = decode_update(self.state())
            for client, clock, length in state.skipped:
                self._keys.add(client, clock, length, COMPACTED, None)
            self._keys.add_items(state.items)
        return self._keys

    def _integrate(self, update: bytes) -> _Integrated:
        """Check the layout of an update's new items and apply it; what it wrote.

        Raises on a refused update; the caller restores the document (it may be half changed).
        """
        try:
            decoded = decode_update(update)
        except UpdateFormatError as error:
            raise CrdtDecodeError(str(error)) from None
        known = self._read().state_vector
        new_items = [
            item for item in decoded.items if item.clock + item.length > state_vector_clock(known, item.client)
        ]
        try:
            places = self._key_index().add_items(new_items)
            fields_written = self._take_in(update, decoded, new_items, places)
            writes = [  # a binary value is refused here (TypeError), before anything is taken in
                (key, item, _value(item))
                for item in _in_dependency_order(new_items)
                if (key := _field_key(places[item.id])) is not None and item.kind != DELETED
            ]
        except BaseException as error:
            if isinstance(error, CrdtDecodeError | KeyboardInterrupt | SystemExit):
                raise
            raise CrdtDecodeError(f"not a Yjs update: {error}") from None
        return _Integrated(writes, fields_written, state_vector_clock(known, SERVER_CLIENT))

    def _take_in(self, update: bytes, decoded: Update, new_items: list[Item], places: _Places) -> set[str]:
        """Check the layout of the new items, apply the update; the fields it writes."""
        fields_written: set[str] = set()
        for item in new_items:
            if item.client == SERVER_CLIENT:
                raise CrdtLayoutError(f"client id {SERVER_CLIENT} is the server's own; devices cannot write as it")
            root, key = places[item.id]
            if root == COMPACTED:
                raise CrdtIncompleteError(COMPACTED_HISTORY)
            if root not in (FIELDS, TAGS, NOTES):
                raise CrdtLayoutError(f"the update writes to {root!r}; the layout has only fields, tags and notes")
            if (root in _MAP_ROOTS) != (key is not None):
                kind = "a Map" if root in _MAP_ROOTS else "a Text"
                raise CrdtLayoutError(f"the update uses {root!r} as another type; it is {kind}")
            if root in _MAP_ROOTS and item.kind not in (ANY, JSON_CONTENT, DELETED):
                raise CrdtLayoutError(f"{root}.{key} must hold a plain value, not a nested type or binary")
            if root == FIELDS and key is not None:
                fields_written.add(key)
        try:
            reading = _reading_of(*self._core.apply_then_read(update))
        finally:
            self._changed()
        self._reading = reading  # kept until the next change: its state vector is the next update's ``known``
        after = reading.state_vector
        held_back = any(item.clock + item.length > state_vector_clock(after, item.client) for item in new_items) or any(
            end > state_vector_clock(after, client) for client, end in decoded.deleted_up_to.items()
        )
        if held_back:
            raise CrdtIncompleteError(MISSING_HISTORY)
        return fields_written


class _Reading(NamedTuple):
    """What a change's answer reads of the Doc, kept until the next change."""

    state_vector: bytes  # each client's next clock, looked up by ``state_vector_clock``
    shown: dict[str, Any]  # the fields map, as JSON
    record: dict[str, Any]  # the record: fields, sorted tags, notes


def _reading_of(state_vector: bytes, fields: str, tags_json: str, notes: str) -> _Reading:
    """What ``YrsCore.read`` gave, decoded."""
    shown, tags = _from_yrs_json(fields), _from_yrs_json(tags_json)
    record = {key: shown[key] for key in sorted(shown)}
    record["tags"] = sorted(tag for tag, present in tags.items() if present is True)
    record["notes"] = notes
    return _Reading(state_vector, shown, record)


class _Integrated(NamedTuple):
    """What an update integrated into a document wrote."""

    writes: list[tuple[str, Item, Any]]  # (field, item, its value) in dependency order
    fields_written: set[str]
    horizon: int  # the server's clock before the update


_Places = dict[ItemId, tuple[str, str | None]]  # item -> (root, map key)


class _KeyIndex:
    """Where each item of a document lives: its root type and, in a map, its key."""

    def __init__(self) -> None:
        self._places: dict[int, list[tuple[int, int, str, str | None]]] = {}  # client -> [(clock, length, root, key)]

    def add(self, client: int, clock: int, length: int, root: str, key: str | None) -> None:
        bisect.insort(self._places.setdefault(client, []), (clock, length, root, key))

    def add_items(self, items: Iterable[Item]) -> _Places:
        """Index items: an update's new ones, or a whole state's; where each one lives. An item that names
        its parent is placed there, any other where its neighbour is; those whose neighbour is not indexed
        yet are placed once the others are (``_add_chains``)."""
        places: _Places = {}
        waiting = []
        for item in items:
            place = self._place_of(item)
            if place is None:
                waiting.append(item)
            else:
                self.add(item.client, item.clock, item.length, *place)
                places[item.id] = place
        if waiting:
            self._add_chains(_Items(waiting), places)
        return places

    def _add_chains(self, batch: _Items, places: _Places) -> None:
        """Place items whose neighbour is among them, followed from item to item so that each is placed
        once (placing them pass after pass took a pass per link: 5.5 ms for a state of 200 items). A
        neighbour found nowhere means the update is incomplete."""
        for item in batch.items:
            if item.id in places:
                continue
            chain, place = [item], self._place_of(item)
            while place is None:
                neighbour = batch.holding(chain[-1].origin or chain[-1].right_origin)
                if neighbour is None or neighbour in chain:
                    raise CrdtIncompleteError(MISSING_HISTORY)
                chain.append(neighbour)
                place = self._place_of(neighbour)
            for link in chain:
                self.add(link.client, link.clock, link.length, *place)
                places[link.id] = place

    def _place_of(self, item: Item) -> tuple[str, str | None] | None:
        """Where an item lives, from what it names or from the index; None when its neighbour is not indexed."""
        if item.names_parent:
            if item.parent_item is not None:
                return ("a nested type", None)
            return (item.parent_root or "", item.parent_sub)
        neighbour = item.origin or item.right_origin
        assert neighbour is not None
        return self.find(neighbour)

    def find(self, item_id: ItemId) -> tuple[str, str | None] | None:
        client, clock = item_id
        run = _run_holding(self._places.get(client, ()), clock)
        return None if run is None else (run[2], run[3])


class _Items:
    """Items looked up by the id of any clock they hold."""

    def __init__(self, items: list[Item]) -> None:
        self.items = items
        self._by_client: dict[int, list[tuple[int, int, Item]]] = {}
        for item in items:
            self._by_client.setdefault(item.client, []).append((item.clock, item.length, item))
        for runs in self._by_client.values():
            runs.sort(key=lambda run: run[0])

    def holding(self, item_id: ItemId | None) -> Item | None:
        if item_id is None:
            return None
        client, clock = item_id
        run = _run_holding(self._by_client.get(client, ()), clock)
        return None if run is None else run[2]


def _run_holding[Run: tuple[Any, ...]](runs: Sequence[Run], clock: int) -> Run | None:
    """Of runs ``(clock, length, ...)`` sorted by clock, the one holding ``clock``."""
    at = bisect.bisect_right(runs, (clock, math.inf)) - 1  # past every run starting at ``clock`` or before
    if at >= 0 and runs[at][0] <= clock < runs[at][0] + runs[at][1]:
        return runs[at]
    return None


def _field_key(place: tuple[str, str | None]) -> str | None:
    root, key = place
    return key if root == FIELDS else None


def _in_dependency_order(items: list[Item]) -> list[Item]:
    """Items of one update so that an item comes after the item it was written on."""
    if len(items) < 2:  # a phone's edit of one field
        return items
    ordered: list[Item] = []
    placed: set[ItemId] = set()
    pending = sorted(items, key=lambda item: (item.client, item.clock))
    waiting = {item.id for item in pending}
    while pending:
        ready = [item for item in pending if item.origin not in waiting or item.origin in placed]
        ready = ready or pending[:1]  # an origin inside a run of several clocks: take the rest as they come
        for item in ready:
            ordered.append(item)
            placed.add(item.id)
        pending = [item for item in pending if item.id not in placed]
    return ordered


def _value(item: Item) -> Any:
    value = item.values[-1] if item.values else None
    if not isinstance(value, _SCALARS):
        json.dumps(value)  # TypeError for binary values: fields are JSON
    return plain_number(value)


def materialize_json(document: SharedDocument) -> str:
    """Canonical JSON of the materialized document: equal documents, equal bytes."""
    return json.dumps(document.materialize(), sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """Yjs nested types (older documents may hold them) as plain JSON."""
    to_py = getattr(value, "to_py", None)
    value = to_py() if to_py is not None else value
    json.dumps(value)  # TypeError for binary values: fields are JSON
    return value


def _from_yrs_json(text: str) -> Any:
    """JSON that Yrs wrote: read without ``json.loads``' checks for surrounding whitespace (two regular
    expression matches, a sixth of reading a map of a few fields)."""
    return _YRS_JSON.raw_decode(text)[0]
