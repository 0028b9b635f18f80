"""A unit of work's writes to several collections, sent together at its end.

A push chunk writes receipts, records, baselines and history events (and, when it has them, archives,
photo references, scope exits, conflicts, refusals, device marks and flags): one bulk write each, in
that order. Gathered here, they go as one ``bulkWrite`` command where the store takes one (the embedded
store, MongoDB 8.0 and later), else one bulk write per collection in the same order, as before
(``held_connection.bulk_write_all``). What a write meeting another writer means is said when it is added:
a duplicate key, or fewer documents matched than expected, is then ``ConcurrentWrite`` (naming the collection).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.results import BulkWriteResult

from service.store import held_connection
from service.store.database import Store
from service.store.transactions import DUPLICATE_KEY, ConcurrentWrite


@dataclass(frozen=True)
class _Group:
    collection: str
    operations: list[Any]
    ordered: bool
    concurrent: str | None  # what a duplicate key (or too few matched) here means: another writer got there first
    matched: int | None  # documents the updates must match, if said


class WriteBatch:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._groups: list[_Group] = []

    def add(
        self,
        collection: str,
        operations: list[Any],
        *,
        ordered: bool = False,
        concurrent: str | None = None,
        matched: int | None = None,
    ) -> None:
        """Write ``operations`` to ``collection`` (none: nothing). ``concurrent``: the ``ConcurrentWrite`` a
        duplicate key among them means, or a count of matched documents other than ``matched``."""
        if operations:
            self._groups.append(_Group(collection, operations, ordered, concurrent, matched))

    def replace_all(self, collection: str, documents: Iterable[dict[str, Any]]) -> None:
        """Write each document whole, inserting those not there yet."""
        self.add(collection, [ReplaceOne({"_id": document["_id"]}, document, upsert=True) for document in documents])

    async def send(self, session: AsyncClientSession) -> None:
        groups = self._groups
        self._groups = []
        db = self._store.db
        try:
            results: list[BulkWriteResult] = await held_connection.bulk_write_all(
                [(db[group.collection], group.operations, group.ordered) for group in groups],
                session,
                store_takes_it=self._store.takes_bulk_write,
            )
        except held_connection.GroupWriteError as error:
            group = groups[error.group]
            duplicate = any(e.get("code") == DUPLICATE_KEY for e in error.details.get("writeErrors", []))
            if duplicate and group.concurrent is not None:
                raise ConcurrentWrite(group.concurrent, collection=group.collection) from error
            raise
        for group, result in zip(groups, results, strict=True):
            if group.matched is not None and result.matched_count != group.matched:
                raise ConcurrentWrite(group.concurrent or "", collection=group.collection)
