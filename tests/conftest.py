"""Shared fixtures: one store server per session (embedded, or MONGODB_URI), one database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from service.app import build_services, declared_indexes
from service.services import Services
from service.settings import Settings
from service.store.database import Store, connect, ensure_indexes
from service.store.embedded import start_embedded_store

# Locally, property tests explore new examples on every run; in CI they replay a fixed set.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    embedded = start_embedded_store(None)
    try:
        yield embedded.uri
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def embedded() -> bool:
    return not os.environ.get("MONGODB_URI")


@pytest.fixture
def database_name() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(mongo_uri: str, database_name: str) -> Settings:
    # The tests' changes are captured at a fixed T0, days before the clock: a new rep's first pushes
    # are not held to the 24 h SYNC_DELAY line here (tests/domain/test_anomaly_delay.py is).
    return Settings(
        mongodb_uri=mongo_uri,
        database=database_name,
        admin_token="admin-secret-token",
        anomaly_delay_without_baseline_hours=24 * 365,
    )


@pytest.fixture
async def store(settings: Settings, embedded: bool) -> AsyncIterator[Store]:
    assert settings.mongodb_uri is not None
    store = connect(settings.mongodb_uri, settings.database, embedded=embedded)
    await ensure_indexes(store, declared_indexes(settings))
    try:
        yield store
    finally:
        await store.client.drop_database(settings.database)
        await store.close()


@pytest.fixture
def services(settings: Settings, store: Store) -> Services:
    return build_services(settings, store)
