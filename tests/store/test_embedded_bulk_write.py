"""Writes to several collections in one ``bulkWrite`` (MongoDB 8.0's command, which ``embedded_bulk_write``
serves on the embedded store) answer as one bulk write per collection does: the same results, the same
errors in the same group, the same documents stored; and they are one command."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pymongo import InsertOne, ReplaceOne, UpdateOne

from service.settings import Settings
from service.store import held_connection
from service.store.database import Store
from service.store.transactions import COLLECTION as COMMITS
from service.store.transactions import UnitOfWork
from tests.store.watched import Commands, watched_store, writes_in_one_command

Groups = list[tuple[str, list[Any], bool]]


def groups(duplicate: bool = False) -> Groups:
    """A push's kinds of writes: inserts, replacements over a revision (upserting), updates, and, if asked, an
    insert of a key already there in the second group."""
    return [
        ("a", [InsertOne({"_id": f"a{n}", "n": n}) for n in range(3)], False),
        (
            "b",
            [
                ReplaceOne({"_id": "b1", "rev": None}, {"_id": "b1", "rev": 1}, upsert=True),
                ReplaceOne({"_id": "kept", "rev": 1}, {"_id": "kept", "rev": 2}, upsert=True),
                ReplaceOne({"_id": "none"}, {"n": 0}),
                *([InsertOne({"_id": "kept"})] if duplicate else []),
            ],
            False,
        ),
        (
            "a",
            [UpdateOne({"_id": "a1"}, {"$max": {"n": 5}}), UpdateOne({"_id": "up"}, {"$inc": {"n": 1}}, upsert=True)],
            True,
        ),
        ("c", [InsertOne({"_id": "c1", "list": [1, 2]})], True),
    ]


async def written(store: Store, one_command: bool, writes: Groups) -> tuple[Any, list[Any]]:
    """The results (or the error: its group and write errors) of ``writes`` in a transaction, and what is stored."""
    await store.db["b"].insert_one({"_id": "kept", "rev": 1})
    if not one_command:  # as on a store that does not take bulkWrite
        store = dataclasses.replace(store, takes_bulk_write=False)

    async def work(session: Any) -> Any:
        collections = [(store.db[name], requests, ordered) for name, requests, ordered in writes]
        results = await held_connection.bulk_write_all(collections, session, store_takes_it=store.takes_bulk_write)
        return [(r.inserted_count, r.matched_count, r.modified_count, r.upserted_ids) for r in results]

    try:
        answer = await UnitOfWork(store).run(work)
    except held_connection.GroupWriteError as error:
        answer = (error.group, [(e["index"], e["code"], e["op"]) for e in error.details["writeErrors"]])
    stored = [await store.db[name].find().sort("_id").to_list() for name in "abc"]
    for name in "abc":
        await store.db[name].drop()
    return answer, stored


async def test_writes_to_several_collections_in_one_command_answer_as_one_bulk_write_each(store: Store):
    if not await writes_in_one_command(store):
        pytest.skip("the store takes no bulkWrite: there is nothing to compare")
    one = await written(store, True, groups())
    assert one == await written(store, False, groups())
    results, stored = one
    assert results == [(3, 0, 0, {}), (0, 1, 1, {0: "b1"}), (0, 1, 1, {1: "up"}), (1, 0, 0, {})]
    assert [len(documents) for documents in stored] == [4, 2, 1]


async def test_a_duplicate_key_fails_its_own_group_and_nothing_is_written(store: Store):
    if not await writes_in_one_command(store):
        pytest.skip("the store takes no bulkWrite: there is nothing to compare")
    one = await written(store, True, groups(duplicate=True))
    assert one == await written(store, False, groups(duplicate=True))
    assert one == ((1, [(3, 11000, {"_id": "kept"})]), [[], [{"_id": "kept", "rev": 1}], []])


async def test_they_are_one_command(settings: Settings, embedded: bool, store: Store):
    commands = Commands()
    async with watched_store(settings, embedded, commands) as watched:
        one = await writes_in_one_command(watched)
        commands.names.clear()
        commands.collections.clear()
        await written(watched, True, groups())
    sent = [  # after the seed, but for the unit of work's marker
        name
        for name, collection in zip(commands.names, commands.collections, strict=True)
        if name in ("bulkWrite", "insert", "update") and collection != COMMITS
    ][1:]
    assert sent == (["bulkWrite"] if one else ["insert", "update", "update", "insert"])
