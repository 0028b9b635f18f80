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
"""

from __future__ import annotations

import asyncio
from typing import Any

BUSY = "active transaction bound to another session"
TIMEOUT = 60.0


def apply() -> None:
    _wait_for_transactions()
    _abort_failed_commits()


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
