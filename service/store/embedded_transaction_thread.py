"""Embedded store (mongoeco 4.11.0, SQLite engine): a transaction's engine work runs on the event loop's thread.

The SQLite engine hands every step of every command to a worker thread and awaits it
(``SQLiteEngine._run_blocking``, sqlite.py:827): a submit, a worker woken, the result
handed back through the loop's self-pipe. A push transaction takes ~16 such steps of
~1-1.5 ms each. Alone a hand-off costs ~0.3 ms; with 50 devices pushing, reads outside the
transaction (token checks, the ``syncStatus`` view) keep the workers busy, and each
hand-off waits for the GIL both ways: ~1.5 ms a step, ~20 ms of the ~80 ms a transaction
then held the store's only write transaction, which every other push waits for.

A transaction's steps cannot overlap anyway: they run one after another on the one write
connection, under the engine's lock. So a command sent inside a transaction (``autocommit:
false``, as every command of a transaction is) runs its steps at once on the loop's thread,
in a copy of the command's context as the worker ran them. Everything else (reads outside a
transaction, single writes) keeps the worker threads. While a step runs the loop serves
nothing else; a step is a few milliseconds, and the transaction it serves is the queue
every push waits in.
"""

from __future__ import annotations

import contextvars
from contextvars import ContextVar
from functools import partial
from typing import Any

from service.store.embedded_pin import apply_once

_in_transaction: ContextVar[bool] = ContextVar("fieldsync_in_transaction", default=False)
_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.engines import sqlite
    from mongoeco.wire.executor import WireCommandExecutor

    engine_cls = sqlite.SQLiteEngine
    original_execute = _ORIGINALS["execute"] = WireCommandExecutor.execute_prepared
    original_run = _ORIGINALS["run"] = engine_cls._run_blocking

    async def execute_prepared(self: Any, context: Any) -> dict[str, Any]:
        token = _in_transaction.set(context.raw_body.get("autocommit") is False)
        try:
            return await original_execute(self, context)
        finally:
            _in_transaction.reset(token)

    async def _run_blocking(self: Any, func: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not _in_transaction.get():
            return await original_run(self, func, *args, **kwargs)
        return contextvars.copy_context().run(partial(func, *args, **kwargs))

    WireCommandExecutor.execute_prepared = execute_prepared  # type: ignore[method-assign]
    engine_cls._run_blocking = _run_blocking  # type: ignore[method-assign]
