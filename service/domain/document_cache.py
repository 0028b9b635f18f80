"""Hot shared documents kept decoded in memory, keyed by (record, version, seq)."""

from __future__ import annotations

from collections import OrderedDict

from crdt import SharedDocument, Write
from service.domain.records import Record, RecordKey


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
    """The shared documents one batch is changing, checked out of the cache."""

    def __init__(self, cache: DocumentCache) -> None:
        self._cache = cache
        self._documents: dict[RecordKey, SharedDocument] = {}

    def get(self, key: RecordKey, record: Record | None) -> SharedDocument:
        if key not in self._documents:
            self._documents[key] = self._cache.take(record) if record else SharedDocument()
        return self._documents[key]

    def discard(self, key: RecordKey) -> None:
        """Forget changes made to a document; the next get decodes the record again."""
        self._documents.pop(key, None)

    def commit(self, records: dict[RecordKey, Record]) -> None:
        """Return the documents of committed records to the cache."""
        for key, document in self._documents.items():
            if key in records:
                self._cache.put(records[key], document)
