"""What every collection of whole documents keyed by ``_id`` does alike: write many in one
command, read many by id in one read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from service.store import held_connection

Document = dict[str, Any]


async def replace_all(
    collection: AsyncCollection[Document], documents: Iterable[Document], session: AsyncClientSession | None
) -> None:
    """Write each document whole, inserting those not there yet, in one bulk write (none for no documents)."""
    operations = [ReplaceOne({"_id": document["_id"]}, document, upsert=True) for document in documents]
    if operations:
        await held_connection.bulk_write(collection, operations, session, ordered=False)


async def find_by_ids(collection: AsyncCollection[Document], ids: Iterable[str]) -> list[Document]:
    """The documents with these ids, in one read (ids not found are left out)."""
    wanted = sorted(set(ids))
    return await collection.find({"_id": {"$in": wanted}}).to_list() if wanted else []
