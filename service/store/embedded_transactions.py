"""Embedded store (mongoeco 4.11.0): transactions that behave as MongoDB's do for our client.

1. Wait instead of failing (SQLite engine). The SQLite engine serves one transaction at a time on one connection, and
answers every other session's write meanwhile with "... active transaction
bound to another session", and another session's ``startTransaction`` with
"... already has an active transaction" (reads go to a connection of their own,
see ``embedded_readers``). MongoDB would queue those writes. This patch makes the
wire server do the same from the client's point of view: such a command waits
until the transaction has ended (committed, aborted or reaped: each wakes the
waiters at once), then runs. The error is raised before the command does any
work, so running it again is safe; a command that still cannot run after
``TIMEOUT`` seconds fails as before. Without this, a second service instance
polled for its turn from the client side and gave up (HTTP 503) under load.

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
import contextlib
import time
import weakref
from contextvars import ContextVar
from typing import Any

BUSY = "active transaction bound to another session"  # in both messages
TIMEOUT = 60.0
POLL = 0.05  # seconds between looks even when no end was signalled
ABANDONED_AFTER = 10.0
_stores: weakref.WeakSet[Any] = weakref.WeakSet()  # every WireSessionStore
_last_seen: dict[str, float] = {}  # session key -> monotonic time of its last command


def apply() -> None:
    _wait_for_transactions()
    _abort_failed_commits()
    _track_sessions()


class _Busy(BaseException):
    """A command's ``startTransaction`` found another session's transaction (raised past the
    proxy's own error handling, which would answer it as a failure)."""


_deadline: ContextVar[float] = ContextVar("fieldsync_wait_deadline", default=0.0)
_ended: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None  # set (and replaced) when a transaction ends


def _transaction_ended() -> None:
    """Wake every command waiting for a transaction (callable from any thread)."""
    if _ended is not None:
        loop, ended = _ended
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(ended.set)


async def _next_turn(deadline: float) -> bool:
    """Wait until a transaction ends (at most ``POLL`` seconds); False once past ``deadline``."""
    global _ended
    loop = asyncio.get_running_loop()
    if loop.time() > deadline:
        return False
    if _ended is None or _ended[1].is_set() or _ended[0] is not loop:
        _ended = (loop, asyncio.Event())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_ended[1].wait(), POLL)
    return True


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
    from mongoeco.engines._sqlite_session_runtime import SQLiteSessionRuntime
    from mongoeco.wire.executor import WireCommandExecutor
    from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

    original_execute = WireCommandExecutor.execute_prepared
    if getattr(original_execute, "waits_for_transactions", False):
        return
    original_decode = AsyncMongoEcoProxyServer._decode_wire_context
    original_dispatch = AsyncMongoEcoProxyServer._dispatch_wire_request

    async def execute_prepared(self: Any, context: Any) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while True:
            try:
                return await original_execute(self, context)
            except Exception as error:
                if BUSY not in str(error) or not await _next_turn(deadline):
                    raise

    def _decode_wire_context(self: Any, *args: Any) -> Any:
        try:
            return original_decode(self, *args)
        except Exception as error:  # startTransaction runs here, while the request is prepared
            if BUSY in str(error) and asyncio.get_running_loop().time() < _deadline.get():
                raise _Busy from error
            raise

    async def _dispatch_wire_request(self: Any, header: Any, payload: bytes, *, connection: Any) -> Any:
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        token = _deadline.set(deadline)
        try:
            while True:
                try:
                    return await original_dispatch(self, header, payload, connection=connection)
                except _Busy:
                    await _next_turn(deadline)
        finally:
            _deadline.reset(token)

    def ends(original: Any) -> Any:
        def end(self: Any, session: Any) -> None:
            try:
                original(self, session)
            finally:
                _transaction_ended()

        return end

    execute_prepared.waits_for_transactions = True  # type: ignore[attr-defined]
    WireCommandExecutor.execute_prepared = execute_prepared  # type: ignore[method-assign]
    AsyncMongoEcoProxyServer._decode_wire_context = _decode_wire_context  # type: ignore[method-assign]
    AsyncMongoEcoProxyServer._dispatch_wire_request = _dispatch_wire_request  # type: ignore[method-assign]
    for name in ("commit_session_transaction", "abort_session_transaction"):
        setattr(SQLiteSessionRuntime, name, ends(getattr(SQLiteSessionRuntime, name)))


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
