"""pycrdt's Rust core, called without its Python wrappers, for the calls every merge makes.

pycrdt wraps each call into its Rust ``Doc`` in a Python transaction object (made, entered,
exited, committed, then its origin and its observers' errors looked at): some microseconds a
call, and a hot merge makes eight. Here the same Rust calls run in one Rust transaction per
step (the update applied and the document read after it share one), committed and dropped
as pycrdt does. The attributes used (``Doc._doc``, a type's
``integrated``) are not pycrdt's public API, so this is pinned to the version below, and
``tests/crdt/test_yrs_core.py`` fails when the installed pycrdt differs or its calls change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Doc, Map, Text

PYCRDT_VERSION = "0.14.13"


class YrsCore:
    """A document's Rust core and its three root types: fields, tags, notes."""

    def __init__(self, doc: Doc, fields: Map, tags: Map, notes: Text) -> None:
        self._doc: Any = doc._doc
        self._fields, self._tags, self._notes = fields.integrated, tags.integrated, notes.integrated

    def apply(self, update: bytes) -> None:
        self._in_transaction(lambda txn: self._doc.apply_update(txn, update))

    def encoded(self, state_vector: bytes = b"\x00") -> bytes:
        """What a replica with ``state_vector`` lacks, as a v1 update (the whole document by default)."""
        return self._in_transaction(lambda txn: self._doc.get_update(txn, state_vector))

    def read(self) -> tuple[bytes, str, str, str]:
        """The state vector, the fields and the tags as JSON, and the notes, in one transaction."""
        return self._in_transaction(self._read)

    def apply_then_read(self, update: bytes) -> tuple[bytes, str, str, str]:
        """Apply an update, then read as ``read`` does, in the same transaction."""

        def apply_then_read(txn: Any) -> tuple[bytes, str, str, str]:
            self._doc.apply_update(txn, update)
            return self._read(txn)

        return self._in_transaction(apply_then_read)

    def _read(self, txn: Any) -> tuple[bytes, str, str, str]:
        return self._doc.get_state(txn), self._fields.to_json(txn), self._tags.to_json(txn), self._notes.get_string(txn)

    def _in_transaction[T](self, call: Callable[[Any], T]) -> T:
        txn = self._doc.create_transaction()
        try:
            return call(txn)
        finally:
            txn.commit()
            txn.drop()
