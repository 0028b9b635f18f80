"""Pure CRDT core for shared records: the Yjs document layout, the per-field merge rule, diff, materialize.

Imports only pycrdt and the standard library. Deterministic: the same set of
changes, in any order and any number of times, gives the same record.
"""

from crdt.document import (
    CrdtDecodeError,
    CrdtIncompleteError,
    CrdtLayoutError,
    Merge,
    SharedDocument,
    materialize_json,
)
from crdt.field_rule import SERVER_CLIENT, Frontier, Stamp, Write

__all__ = [
    "SERVER_CLIENT",
    "CrdtDecodeError",
    "CrdtIncompleteError",
    "CrdtLayoutError",
    "Frontier",
    "Merge",
    "SharedDocument",
    "Stamp",
    "Write",
    "materialize_json",
]
