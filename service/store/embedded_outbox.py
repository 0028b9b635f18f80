"""Embedded store (mongoeco 4.11.0, SQLite engine): no change-stream outbox, which nothing reads.

For change streams, the SQLite engine writes every inserted, updated and deleted
document a second time, into a ``change_outbox`` table in the same transaction, and
after each commit hands the new entries to its in-process change-stream hub: it takes
a lease (a write and a commit on a second connection), starts a heartbeat thread, and
writes a checkpoint and commits once per entry. A push of 20 changes writes some 60
documents, so its commit cost as much as all its writes (48 ms of a 240 ms push,
measured on the wire). The wire server refuses ``$changeStream`` (FieldSync follows the
history collection instead), so no one ever reads these entries.

This patch declares the engine as one without change delivery (mongoeco's ``"none"``,
what engines without an outbox declare: no commit sequence is then expected of a write,
and nothing is dispatched after a commit), and makes the outbox append a no-op.

Above the engines (both), each collection also hands every written document to the client's
in-process change-stream hub (api/_async/_collection_runtime.py:260): a deep copy of the
document, queued on the session inside a transaction and appended to the hub's retained
events at its commit (and the memory engine keeps a deep copy of its own for its change
log). Nothing can watch that hub either, so a collection publishes nothing
(``publish_change_event`` does nothing, ``should_publish_change_events`` is False, which
tells the engines to record a gap instead of the document): ~8% of the store's CPU for an
insert of 20 history events.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.api._async._collection_runtime import CollectionRuntimeCoordinator as runtime
    from mongoeco.engines import sqlite

    engine_cls = sqlite.SQLiteEngine
    _ORIGINALS.update(capabilities=engine_cls.capabilities, append=sqlite._sqlite_append_change)
    _ORIGINALS.update(publish=runtime.publish_change_event, should_publish=runtime.should_publish_change_events)
    engine_cls.capabilities = dataclasses.replace(engine_cls.capabilities, change_delivery="none")
    sqlite._sqlite_append_change = _no_entry  # type: ignore[attr-defined]
    runtime.publish_change_event = _no_entry  # type: ignore[method-assign]
    runtime.should_publish_change_events = _never  # type: ignore[method-assign]


def _no_entry(*args: Any, **kwargs: Any) -> None:
    return None


def _never(*args: Any, **kwargs: Any) -> bool:
    return False
