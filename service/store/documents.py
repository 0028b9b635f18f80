"""What every collection of whole documents keyed by ``_id`` does alike: read many by id in one read
(``write_batch.WriteBatch.replace_all`` writes many)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

Document = dict[str, Any]


async def find_by_ids(collection: AsyncCollection[Document], ids: Iterable[str]) -> list[Document]:
    """The documents with these ids, in one read (ids not found are left out)."""
    wanted = sorted(set(ids))
    return await collection.find({"_id": {"$in": wanted}}).to_list() if wanted else []
