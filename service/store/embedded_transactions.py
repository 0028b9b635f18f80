"""Embedded store (mongoeco 4.11.0): transactions that behave as MongoDB's do for our client.

1. Wait instead of failing (SQLite engine). The SQLite engine serves one transaction at a time on one connection, and
answers every other session's write meanwhile with "... active transaction
bound to another session", and another session's ``startTransaction`` with
"... already has an active transaction" (reads go to a connection of their own,
see ``embedded_readers``). MongoDB would queue those writes. This patch makes the
wire server do the same from the client's point of view: such a command waits
in a first-come first-served queue; when the transaction ends (committed,
aborted or reaped) the first waiting command runs at once. The error is raised before the command does any
work, so running it again is safe; a command that still cannot run after
``TIMEOUT`` seconds fails as before. Without this, a second service instance
polled for its turn from the client side and gave up (HTTP 503) under load; the
queue keeps one instance from starving another.

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
from collections import deque
from contextvars import ContextVar
from typing import Any

BUSY = "active transaction bound to another session"  # in both messages
TIMEOUT = 60.0
POLL = 1.0  # seconds a waiting command looks again even if its turn was not signalled
ABANDONED_AFTER = 10.0
_stores: weakref.WeakSet[Any] = weakref.WeakSet()  # every WireSessionStore
_last_seen: dict[str, float] = {}  # session id (mongoeco's ClientSession.session_id) -> its last command's time


def apply() -> None:
    _wait_for_transactions()
    _abort_failed_commits()
    _track_sessions()


class _Busy(BaseException):
    """A command's ``startTransaction`` found another session's transaction (raised past the
    proxy's own error handling, which would answer it as a failure)."""


_deadline: ContextVar[float] = ContextVar("fieldsync_wait_deadline", default=0.0)
_queue: deque[asyncio.Future[None]] = deque()  # commands waiting for the transaction, first come first served
_loop: asyncio.AbstractEventLoop | None = None
_held = False  # a SQLite transaction is open


def _transaction_ended() -> None:
    """The transaction ended: the first waiting command goes next (callable from any thread)."""
    global _held
    _held = False
    if _loop is not None:
        with contextlib.suppress(RuntimeError):  # the loop has closed
            _loop.call_soon_threadsafe(_wake_next)


def _wake_next() -> None:
    while _queue:
        turn = _queue.popleft()
        if not turn.done():
            turn.set_result(None)
            return


async def _next_turn(deadline: float, turn: asyncio.Future[None] | None) -> asyncio.Future[None] | None:
    """Wait in the queue for this command's turn, keeping its place; its place in the queue, or None
    once past ``deadline``.

    It looks every ``POLL`` seconds, but tries again only when signalled or when no transaction is
    open: a try decodes and prepares the command again, and with 50 pushes queued, trying at every
    look was ~50 refused tries a second. A command that got its turn and still found a transaction
    (taken by a command that never waited) goes back to the head of the queue."""
    global _loop
    _loop = asyncio.get_running_loop()
    if _loop.time() > deadline:
        return None
    if turn is None or turn.done():
        (_queue.append if turn is None else _queue.appendleft)(turn := _loop.create_future())
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(turn), POLL)
        if turn.done() or not _held or _loop.time() > deadline:
            return turn


def _leave(turn: asyncio.Future[None] | None) -> None:
    """After a command that waited: leave the queue; if no transaction is open, the next one goes."""
    if turn is None:
        return
    turn.cancel()  # still queued (it ran after a look, not a signal): the queue skips it
    if not _held:
        _wake_next()


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
            _last_seen[session.session_id] = time.monotonic()
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
        for context in list(store._sessions.values()):
            session = context.session
            live.add(session.session_id)
            if session.transaction_active and now - _last_seen.get(session.session_id, now) > after:
                session.abort_transaction()
                aborted += 1
    for session_id in _last_seen.keys() - live:
        del _last_seen[session_id]
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
        deadline, turn = asyncio.get_running_loop().time() + TIMEOUT, None
        try:
            while True:
                try:
                    return await original_execute(self, context)
                except Exception as error:
                    if BUSY not in str(error) or (waiting := await _next_turn(deadline, turn)) is None:
                        raise
                    turn = waiting
        finally:
            _leave(turn)

    def _decode_wire_context(self: Any, *args: Any) -> Any:
        try:
            return original_decode(self, *args)
        except Exception as error:  # startTransaction runs here, while the request is prepared
            if BUSY in str(error) and asyncio.get_running_loop().time() < _deadline.get():
                raise _Busy from error
            raise

    async def _dispatch_wire_request(self: Any, header: Any, payload: bytes, *, connection: Any) -> Any:
        deadline, turn = asyncio.get_running_loop().time() + TIMEOUT, None
        token = _deadline.set(deadline)
        try:
            while True:
                try:
                    return await original_dispatch(self, header, payload, connection=connection)
                except _Busy:  # past the deadline, the next attempt answers the error
                    turn = await _next_turn(deadline, turn) or turn
        finally:
            _deadline.reset(token)
            _leave(turn)

    def starts(original: Any) -> Any:
        def start(self: Any, session: Any) -> None:
            global _held
            original(self, session)
            _held = True

        return start

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
    SQLiteSessionRuntime.start_session_transaction = starts(SQLiteSessionRuntime.start_session_transaction)  # type: ignore[method-assign]
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
