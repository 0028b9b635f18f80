"""Shared bench plumbing: an embedded store, services on it, and a round-trip counter."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pymongo import monitoring

from service.app import build_services, declared_indexes
from service.services import Services
from service.settings import Settings
from service.store.database import connect, ensure_indexes
from service.store.embedded import start_embedded_store


class RoundTrips(monitoring.CommandListener):
    """Counts commands sent to the store (each is one round trip)."""

    def __init__(self) -> None:
        self.count = 0
        self.by_command: dict[str, int] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1
        self.by_command[event.command_name] = self.by_command.get(event.command_name, 0) + 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.count = 0
        self.by_command = {}


@asynccontextmanager
async def bench_services(
    sqlite_dir: Path | None = None, **settings_overrides: Any
) -> AsyncIterator[tuple[Services, RoundTrips]]:
    embedded = start_embedded_store(sqlite_dir)
    listener = RoundTrips()
    settings = Settings(mongodb_uri=embedded.uri, database=f"bench_{uuid.uuid4().hex[:8]}", **settings_overrides)
    store = connect(embedded.uri, settings.database, embedded=True, event_listeners=[listener])
    try:
        await ensure_indexes(store, declared_indexes(settings))
        yield build_services(settings, store), listener
    finally:
        await store.close()
        embedded.stop()


def report(name: str, **figures: object) -> None:
    """One machine-readable line per result."""
    print(json.dumps({"bench": name, **figures}), flush=True)
