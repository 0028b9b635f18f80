"""Pure CRDT core for shared records: the Yjs document layout, merge, diff, materialize.

Imports only pycrdt and the standard library. Deterministic: applying the same
set of updates in any order, any number of times, gives the same document.
"""

from crdt.document import (
    CrdtDecodeError,
    SharedDocument,
    materialize_json,
)
from crdt.field_patch import FieldStamp, field_patch_update

__all__ = [
    "CrdtDecodeError",
    "FieldStamp",
    "SharedDocument",
    "field_patch_update",
    "materialize_json",
]
