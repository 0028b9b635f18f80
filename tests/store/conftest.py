"""Fixtures shared by the store's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.store.embedded import EmbeddedStore, start_embedded_store


@pytest.fixture(scope="module")
def memory_store() -> Iterator[EmbeddedStore]:
    """An embedded store on the memory engine, one per test module."""
    embedded = start_embedded_store(None)
    try:
        yield embedded
    finally:
        embedded.stop()
