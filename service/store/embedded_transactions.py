"""Embedded store (mongoeco 4.11.0): transactions that behave as MongoDB's do for our client.

1. Wait instead of failing (SQLite engine). The SQLite engine serves one transaction at a time on one connection, and
answers every other session's command meanwhile with "... active transaction
bound to another session". MongoDB would serve those reads and queue those
writes. This patch makes the wire server do the same from the client's point
of view: such a command waits, then runs once the transaction has finished.
The error is raised before the command does any work, so running it again is
safe; a command that still cannot run after ``TIMEOUT`` seconds fails as before.

2. A failed commit ends the transaction (memory engine). When a commit loses
a write conflict, mongoeco 4.11.0 keeps the transaction open on the session;
PyMongo then reuses that session for later commands, which run inside the
stale transaction and are never committed. MongoDB aborts a transaction whose
commit failed; so does this patch, before the error goes back to the client.

3. Abandoned transactions end (both engines). mongoeco keeps a transaction open
until its session commits or aborts it, so a client killed mid-push held the
SQLite engine's only transaction forever and every other client waited on it.
MongoDB aborts a transaction older than ``transactionLifetimeLimitSeconds`` (60 s);
here ``reap_abandoned`` aborts one whose session sent no command for
``ABANDONED_AFTER`` seconds. A live unit of work sends its next command within
milliseconds; if it was only slow, its next command fails with a transient error
and the unit of work runs again.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

BUSY = "active transaction bound to another session"
TIMEOUT = 60.0
ABANDONED_AFTER = 10.0
_stores: weakref.WeakSet[Any] = weakref.WeakSet()  # every WireSessionStore
_last_seen: dict[str, float] = {}  # session key -> monotonic time of its last command


def apply() -> None:
    _wait_for_transactions()
    _abort_failed_commits()
    _track_sessions()


def _track_sessions() -> None:
    from mongoeco.wire.sessions import WireSessionStore

    original_init = WireSessionStore.__init__
    original_resolve = WireSessionStore.resolve_for_command
    if getattr(original_resolve, "tracks_sessions", False):
        return

    def __init__(self: Any) -> None:
        original_init(self)
        _stores.add(self)

    def resolve_for_command(self: Any, client: Any, body: dict[str, Any], *, capability: Any) -> Any:
        session = original_resolve(self, client, body, capability=capability)
        if session is not None:
            from mongoeco.wire._session_identity import wire_session_key

            _last_seen[wire_session_key(body["lsid"])] = time.monotonic()
        return session

    resolve_for_command.tracks_sessions = True  # type: ignore[attr-defined]
    WireSessionStore.__init__ = __init__  # type: ignore[method-assign]
    WireSessionStore.resolve_for_command = resolve_for_command  # type: ignore[method-assign]


def reap_abandoned(now: float | None = None, after: float = ABANDONED_AFTER) -> int:
    """Abort every transaction whose session has been silent for ``after`` seconds; how many."""
    now = time.monotonic() if now is None else now
    aborted = 0
    live: set[str] = set()
    for store in list(_stores):
        for key, context in list(store._sessions.items()):
            live.add(key)
            if context.session.transaction_active and now - _last_seen.get(key, now) > after:
                context.session.abort_transaction()
                aborted += 1
    for key in _last_seen.keys() - live:
        del _last_seen[key]
    return aborted


def _wait_for_transactions() -> None:
    from mongoeco.wire.executor import WireCommandExecutor

    original = WireCommandExecutor.execute_prepared
    if getattr(original, "waits_for_transactions", False):
        return

    async def execute_prepared(self: Any, context: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        delay = 0.0005
        while True:
            try:
                return await original(self, context)
            except Exception as error:
                if BUSY not in str(error) or loop.time() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.01)

    execute_prepared.waits_for_transactions = True  # type: ignore[attr-defined]
    WireCommandExecutor.execute_prepared = execute_prepared  # type: ignore[method-assign]


def _abort_failed_commits() -> None:
    from mongoeco.wire.sessions import WireSessionStore

    original = WireSessionStore.commit_transaction
    if getattr(original, "aborts_on_failure", False):
        return

    def commit_transaction(self: Any, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return original(self, body)
        except Exception:
            session = self._require_session(body)
            if session.transaction_active:
                session.abort_transaction()
            raise

    commit_transaction.aborts_on_failure = True  # type: ignore[attr-defined]
    WireSessionStore.commit_transaction = commit_transaction  # type: ignore[method-assign]
