"""Hot shared documents kept decoded in memory, keyed by (record, version, seq).

A batch checks its documents out (``WorkingDocuments``), with the archives of earlier
epochs its changes were made on.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from crdt import SharedDocument, Write
from service.domain.records import Record, RecordKey

ArchiveKey = tuple[RecordKey, int]  # (record, epoch)


def decode(record: Record) -> SharedDocument:
    stored = record.crdt_frontiers or {}
    frontiers = {key: [Write.from_json(write) for write in writes] for key, writes in stored.items()}
    return SharedDocument(record.crdt_state, frontiers)


def frontiers_of(document: SharedDocument) -> dict[str, list[list[object]]]:
    return {key: [write.to_json() for write in writes] for key, writes in sorted(document.frontiers().items())}


class DocumentCache:
    """An LRU of decoded Yjs documents.

    ``take`` hands the document over (the caller may change it) so a cached
    entry never drifts from its stored state (a write that keeps the version,
    such as a losing concurrent write, still moves ``seq``); ``put`` returns it once its new
    version is committed. A document taken and never put back is just gone.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[RecordKey, int, int], SharedDocument] = OrderedDict()
        self.hits = self.misses = 0

    def take(self, record: Record) -> SharedDocument:
        document = self._entries.pop((record.key, record.version, record.seq), None)
        if document is not None:
            self.hits += 1
            return document
        self.misses += 1
        return decode(record)

    def put(self, record: Record, document: SharedDocument) -> None:
        if self._capacity <= 0:
            return
        self._entries[(record.key, record.version, record.seq)] = document
        self._entries.move_to_end((record.key, record.version, record.seq))
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


class WorkingDocuments:
    """The shared documents one batch is changing, checked out of the cache, and the archives of
    earlier epochs its changes were made on (``crdt.SharedDocument.merge_archived``)."""

    def __init__(self, cache: DocumentCache) -> None:
        self._cache = cache
        self._documents: dict[RecordKey, SharedDocument] = {}
        self._archives: dict[ArchiveKey, bytes] = {}  # as loaded, or as the batch's decided changes left them
        self._open_archives: dict[ArchiveKey, SharedDocument] = {}  # changed by the change being decided
        self._changed_archives: set[ArchiveKey] = set()

    def get(self, key: RecordKey, record: Record | None) -> SharedDocument:
        if key not in self._documents:
            self._documents[key] = self._cache.take(record) if record else SharedDocument()
        return self._documents[key]

    def discard(self, key: RecordKey) -> None:
        """Forget changes made to a document (and its archives); the next get decodes the record again."""
        self._documents.pop(key, None)
        for archive in [archive for archive in self._open_archives if archive[0] == key]:
            del self._open_archives[archive]

    def know_archives(self, archives: Mapping[ArchiveKey, bytes]) -> None:
        self._archives.update(archives)

    def archive(self, key: ArchiveKey) -> SharedDocument | None:
        """The archive of a record's epoch, None when it is not kept."""
        if key not in self._open_archives and key in self._archives:
            self._open_archives[key] = SharedDocument(self._archives[key])
        return self._open_archives.get(key)

    def start_epoch(self, key: RecordKey, ended: int, state: bytes) -> None:
        """The record's epoch ``ended`` ends with ``state``, kept as its archive."""
        self._open_archives[(key, ended)] = SharedDocument(state)

    def keep_archives(self, key: RecordKey) -> None:
        """The change being decided on ``key`` stands: what it did to archives is to be written."""
        for archive in [archive for archive in self._open_archives if archive[0] == key]:
            state = self._open_archives.pop(archive).state()
            if self._archives.get(archive) != state:
                self._archives[archive] = state
                self._changed_archives.add(archive)

    def archives_to_write(self) -> dict[ArchiveKey, bytes]:
        return {archive: self._archives[archive] for archive in self._changed_archives}

    def commit(self, records: dict[RecordKey, Record]) -> None:
        """Return the documents of committed records to the cache."""
        for key, document in self._documents.items():
            if key in records:
                self._cache.put(records[key], document)
