"""A transaction's commands on the connection it holds answer as PyMongo's collection API does."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import InsertOne, ReplaceOne, ReturnDocument, monitoring
from pymongo.asynchronous.bulk import _AsyncBulk
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.pool import AsyncConnection
from pymongo.errors import BulkWriteError

from service.settings import Settings
from service.store import held_connection
from service.store.database import Store
from service.store.transactions import UnitOfWork
from tests.store.watched import Commands, watched_store


async def _answers(store: Store, session: AsyncClientSession) -> list[Any]:
    """One of each command, twice over a cursor's first batch, on ``session``'s transaction."""
    things = store.db["things"]
    written = await held_connection.bulk_write(
        things,
        [InsertOne({"_id": f"t{n:03}", "n": n}) for n in range(250)] + [ReplaceOne({"_id": "t000"}, {"n": -1})],
        session,
        ordered=True,
    )
    found = await held_connection.find(things, {"n": {"$gte": 0}}, session)
    projected = await held_connection.find(things, {"_id": {"$in": ["t002", "t003"]}}, session, {"_id": 0, "n": 1})
    before = await held_connection.find_one_and_update(things, {"_id": "t001"}, {"$inc": {"n": 10}}, session)
    after = await held_connection.find_one_and_update(
        things, {"_id": "new"}, {"$set": {"n": 7}}, session, upsert=True, return_document=ReturnDocument.AFTER
    )
    missing = await held_connection.find_one_and_update(things, {"_id": "none"}, {"$set": {"n": 1}}, session)
    inserted = await held_connection.bulk_write(
        things, [InsertOne({"_id": "i1"}), InsertOne({"_id": "i2"})], session, ordered=False
    )
    replaced = await held_connection.bulk_write(
        things,
        [
            ReplaceOne({"_id": "t002"}, {"n": -2}),
            ReplaceOne({"_id": "none"}, {"n": 0}),
            ReplaceOne({"_id": "up"}, {"n": 5}, upsert=True),
        ],
        session,
        ordered=True,
    )
    return [
        (written.inserted_count, written.matched_count, written.modified_count),
        (inserted.inserted_count, replaced.matched_count, replaced.modified_count, replaced.upserted_ids),
        sorted(document["_id"] for document in found),
        before,
        after,
        missing,
        projected,
    ]


async def _in_transaction(store: Store, held: bool) -> list[Any]:
    async with store.client.start_session() as session:
        await session.start_transaction()
        if held:
            await held_connection.hold(store.client, session)
            assert session._pinned_connection is not None
        answers = await _answers(store, session)
        await (held_connection.commit(session) if held else session.commit_transaction())
    await store.db["things"].drop()
    return answers


async def test_commands_on_a_held_connection_answer_as_the_collection_api(store: Store):
    held = await _in_transaction(store, held=True)
    assert held == await _in_transaction(store, held=False)
    assert held[0] == (250, 1, 1) and held[1] == (2, 1, 1, {2: "up"}) and len(held[2]) == 249  # past a first batch
    assert held[3] == {"_id": "t001", "n": 1} and held[4] == {"_id": "new", "n": 7} and held[5] is None
    assert held[6] == [{"n": 2}, {"n": 3}]


async def test_a_held_connection_sends_its_commands_itself_unless_commands_are_watched(
    settings: Settings, embedded: bool, store: Store, monkeypatch: pytest.MonkeyPatch
):
    """Without command monitoring, a transaction's commands on its held connection, its commit included, go
    through neither PyMongo's ``AsyncConnection.command`` nor its bulk API, but a bulk write mixing inserts
    and replacements (the bulk API's); watched, they all go the bulk API's and ``command``'s way."""
    sent: list[str] = []
    bulks: list[object] = []

    async def command(self: Any, dbname: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        sent.append(next(iter(spec)))
        return await original_command(self, dbname, spec, *args, **kwargs)

    async def execute(self: Any, *args: Any) -> Any:
        bulks.append(self)
        return await original_execute(self, *args)

    original_command, original_execute = AsyncConnection.command, _AsyncBulk._execute_command
    monkeypatch.setattr(AsyncConnection, "command", command)
    monkeypatch.setattr(_AsyncBulk, "_execute_command", execute)
    lean = await _in_transaction(store, held=True)
    assert (sent, len(bulks)) == (["drop"], 1)  # the drop after the commit; the mixed write
    sent.clear()
    bulks.clear()
    async with watched_store(settings, embedded, Commands()) as watched:
        assert await _in_transaction(watched, held=True) == lean
    assert {"find", "findAndModify", "commitTransaction"} <= set(sent) and len(bulks) == 3


class Checkouts(monitoring.ConnectionPoolListener):
    """Connections taken from the pool and given back."""

    def __init__(self) -> None:
        self.out = self.back = 0

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        self.out += 1

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        self.back += 1

    def __getattr__(self, name: str) -> Any:  # every other pool event
        return lambda event: None


async def test_a_unit_of_work_takes_one_connection_for_all_its_commands_and_gives_it_back(
    settings: Settings, embedded: bool
):
    checkouts = Checkouts()
    async with watched_store(settings, embedded, checkouts) as store:
        pinned: list[object] = []

        async def work(session: AsyncClientSession) -> None:
            pinned.append(session._pinned_connection)
            await _answers(store, session)
            await store.db["other"].insert_one({"_id": 1}, session=session)  # the collection API's reuses it
            pinned.append(session._pinned_connection)

        checkouts.out = checkouts.back = 0
        await UnitOfWork(store).run(work)
        assert pinned[0] is not None and pinned[0] is pinned[1]
        assert (checkouts.out, checkouts.back) == (1, 1)  # ~9 commands and the commit on one connection


async def test_a_write_error_on_a_held_connection_is_the_collection_apis(store: Store):
    errors = []
    for held in (True, False):
        await store.db["things"].insert_one({"_id": "taken"})
        async with store.client.start_session() as session:
            await session.start_transaction()
            if held:
                await held_connection.hold(store.client, session)
            with pytest.raises(BulkWriteError) as caught:
                await held_connection.bulk_write(
                    store.db["things"], [InsertOne({"_id": "free"}), InsertOne({"_id": "taken"})], session, ordered=True
                )
            errors.append(
                [(e["index"], e["code"]) for e in caught.value.details["writeErrors"]]
                + [caught.value.details["nInserted"]]
            )
        await store.db["things"].drop()
    assert errors[0] == errors[1] == [(1, 11000), 1]
