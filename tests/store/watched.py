"""A second connection to the test store whose commands a listener sees, for tests that count them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymongo import monitoring

from service.app import declared_indexes
from service.settings import Settings
from service.store.database import Store, connect, ensure_indexes


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
