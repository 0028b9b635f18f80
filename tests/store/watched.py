"""A second connection to the test store whose commands a listener sees, for tests that count them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import monitoring

from service.app import declared_indexes
from service.settings import Settings
from service.store.database import Store, connect, ensure_indexes


class Commands(monitoring.CommandListener):
    """The names of the commands sent, in order, and the collection each one named (if any)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.collections: list[str | None] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)
        target = event.command.get(event.command_name)
        self.collections.append(target if isinstance(target, str) else None)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def written(event: monitoring.CommandStartedEvent) -> list[tuple[str, str]]:
    """The (kind, collection) of each write a command carries: one for an ``insert``, ``update`` or ``delete``;
    for a ``bulkWrite`` (writes to several collections), one per collection and kind, in the order met."""
    if event.command_name in ("insert", "update", "delete"):
        return [(event.command_name, event.command[event.command_name])]
    if event.command_name != "bulkWrite":
        return []
    collections = [info["ns"].partition(".")[2] for info in event.command["nsInfo"]]
    kinds = [(kind, collections[op[kind]]) for op in event.command["ops"] for kind in [next(iter(op))]]
    return list(dict.fromkeys(kinds))


async def writes_in_one_command(store: Store) -> bool:
    """Whether a unit of work's writes to several collections go as one ``bulkWrite`` (``write_batch``)."""
    hello = await store.client.admin.command("hello")
    return store.takes_bulk_write or hello["maxWireVersion"] >= 25


@asynccontextmanager
async def watched_store(
    settings: Settings, embedded: bool, listener: monitoring.CommandListener
) -> AsyncIterator[Store]:
    """The test store, its commands told to ``listener``, with the service's indexes."""
    assert settings.mongodb_uri is not None
    watched = connect(settings.mongodb_uri, settings.database, embedded=embedded, event_listeners=[listener])
    await ensure_indexes(watched, declared_indexes(settings))
    try:
        yield watched
    finally:
        await watched.close()
