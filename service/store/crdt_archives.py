"""The ``crdtArchives`` collection: a shared record's CRDT state as it was when an epoch ended.

Compaction starts a record's next epoch; updates phones made on an earlier one are merged
through that epoch's archive (``crdt.SharedDocument.merge_archived``), which keeps what they add.
Read by ``_id`` only, for the few changes of a push made on an earlier epoch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bson import Binary
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.document_cache import ArchiveKey
from service.store import held_connection
from service.store.database import Store
from service.store.records import record_id
from service.store.write_batch import WriteBatch

COLLECTION = "crdtArchives"
INDEXES: list = []  # looked up by _id only


def _id(key: ArchiveKey) -> str:
    record, epoch = key
    return f"{record_id(record)}@{epoch}"


async def load(store: Store, keys: Iterable[ArchiveKey], session: AsyncClientSession) -> dict[ArchiveKey, bytes]:
    by_id = {_id(key): key for key in keys}
    if not by_id:
        return {}
    found = await held_connection.find(store.db[COLLECTION], {"_id": {"$in": sorted(by_id)}}, session)
    return {by_id[document["_id"]]: bytes(document["state"]) for document in found}


def save(writes: WriteBatch, archives: Mapping[ArchiveKey, bytes]) -> None:
    documents = ({"_id": _id(key), "state": Binary(state)} for key, state in archives.items())
    writes.replace_all(COLLECTION, sorted(documents, key=lambda document: document["_id"]))
