"""Indexes an earlier version declared and no query reads are dropped at start-up where they exist;
no other index is."""

from __future__ import annotations

from pymongo import IndexModel

from service.app import RETIRED_INDEXES, declared_indexes
from service.settings import Settings
from service.store import history, records
from service.store.database import Store, ensure_indexes


async def names(store: Store, collection: str) -> set[str]:
    return {index["name"] async for index in await store.db[collection].list_indexes()}


async def test_a_store_made_by_an_earlier_version_loses_only_the_retired_indexes(settings: Settings, store: Store):
    await store.db[records.COLLECTION].create_index("seq", name="seq")  # as the earlier version declared them
    await store.db[history.COLLECTION].create_index("syncId", name="sync")
    await store.db["things"].create_index("seq", name="seq")  # an index of the same name elsewhere: kept
    await store.db["things"].create_index("syncId", name="sync")
    declared = declared_indexes(settings)
    before = {collection: await names(store, collection) for collection in RETIRED_INDEXES}
    assert all(set(RETIRED_INDEXES[collection]) <= found for collection, found in before.items())

    await ensure_indexes(store, declared, RETIRED_INDEXES)
    await ensure_indexes(store, declared, RETIRED_INDEXES)  # again: nothing left to drop

    for collection, retired in RETIRED_INDEXES.items():
        assert await names(store, collection) == before[collection] - set(retired)
        assert {model.document["name"] for model in declared[collection]}.isdisjoint(retired)
    assert await names(store, "things") == {"_id_", "seq", "sync"}


async def test_retiring_an_index_that_is_not_there_does_nothing(store: Store):
    await ensure_indexes(store, {"things": [IndexModel("a", name="a")]}, {"things": ["b"], "absent": ["c"]})
    assert await names(store, "things") == {"_id_", "a"}
