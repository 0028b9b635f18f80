"""The Yjs update a device queues for an edit of a shared record: what the edit's transaction produced."""

from __future__ import annotations

from collections.abc import Callable

from pycrdt import Doc

NO_CHANGE = b"\x00\x00"  # a Yjs update holding nothing: what an edit that changed nothing produced


def edit_update(doc: Doc, edit: Callable[[], None]) -> bytes:
    """Make ``edit`` in one transaction of ``doc``; the Yjs update it produced.

    That is what Yjs' ``update`` event carries for a local transaction: the edit's items and the
    deletions it made. ``doc.get_update(state_before)`` says the same edit with the document's whole
    delete set, which grows with its history: more to send, and more for the server to merge.
    """
    produced: list[bytes] = []
    subscription = doc.observe(lambda event: produced.append(event.update))
    try:
        with doc.transaction():
            edit()
    finally:
        doc.unobserve(subscription)
    return produced[-1] if produced else NO_CHANGE
