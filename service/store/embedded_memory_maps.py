"""The memory engine's persistent maps (``--memory``), one insert per write, pinned to mongoeco 4.11.0.

The memory engine keeps a collection in three persistent hash maps (``rpds.HashTrieMap``) keyed by
storage key (_memory_collection.py:365: the documents, their insertion ordinals, their places in
the insertion order), and each index in three keyed by index key (:706: the key's bucket of
storage keys, the members' ordinals, a treap of the members in that order). Storing a new
document inserts into all three of its collection's, and into all three of each of its indexes'.
An insert copies the path from the map's root to its entry, nodes of up to 64 children each, and
the copy takes a reference to every child (and, when the previous version is dropped, lets go of
each): at a million entries some 200 children scattered over a heap of gigabytes, so an insert's
cost grows with the map (1.8 µs at 3k entries, 5.7 µs at a million in a small heap, more in the
store's). FieldSync's indexes have a key per document (``(owner, seq)``, ``(repId, seq)``, ...),
so every such map grows with the data: these inserts were most of the store's CPU per change that
grew from 1k to 1M documents.

This patch keeps each set of three in one map: a document's entry is ``(document, ordinal,
chunk, offset)``, an index key's ``(bucket, ordinals, order)``. A new document is one insert into
its collection's map, one into each index's. Nothing else changes: the same documents, order
chunks, buckets, ordinals and treaps, copied and restored whole by transactions and rollbacks as
before.
"""

from __future__ import annotations

from collections.abc import Iterator
from copy import deepcopy
from heapq import nsmallest
from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    """Before ``embedded_memory_ranges``, whose index map class derives from the engine's."""
    return apply_once(_ORIGINALS, _patch)


def _compact_collection_class(base: Any) -> Any:
    from mongoeco.engines import _memory_collection as upstream
    from rpds import HashTrieMap

    chunk_of = upstream._OrderChunk

    class CompactCollection(base):  # type: ignore[valid-type,misc]
        """mongoeco's collection with each document, its ordinal and its place in one entry of ``_rows``."""

        _chunks: Any  # mongoeco's own: chunk id -> _OrderChunk, the insertion order
        _head_chunk: int
        _tail_chunk: int
        _next_chunk: int
        _next_ordinal: int

        def __init__(self, values: Any = ()) -> None:
            self._rows: Any = HashTrieMap()  # storage key -> (document, ordinal, chunk id, offset in the chunk)
            super().__init__(values)

        def __contains__(self, key: object) -> bool:
            return key in self._rows

        def __getitem__(self, key: Any) -> Any:
            return self._rows[key][0]

        def get(self, key: Any, default: Any = None) -> Any:
            row = self._rows.get(key)
            return default if row is None else row[0]

        def __len__(self) -> int:
            return len(self._rows)

        def _put_in_chunk(self, chunk_id: int, offset: int, item: Any) -> None:
            chunk = self._chunks[chunk_id]
            items = (*chunk.items[:offset], item, *chunk.items[offset + 1 :])
            self._chunks = self._chunks.insert(
                chunk_id, chunk_of(chunk.previous, chunk.following, items, chunk.live_count)
            )

        def _append(self, item: Any) -> tuple[int, int]:
            """Put ``item`` at the end of the order: (chunk id, offset)."""
            tail_id = self._tail_chunk
            if tail_id != upstream._NO_CHUNK:
                tail = self._chunks[tail_id]
                if len(tail.items) < upstream._ORDER_CHUNK_SIZE:
                    grown: Any = chunk_of(tail.previous, tail.following, (*tail.items, item), tail.live_count + 1)
                    self._chunks = self._chunks.insert(tail_id, grown)
                    return tail_id, len(tail.items)
            chunk_id = self._next_chunk
            self._next_chunk += 1
            self._chunks = self._chunks.insert(chunk_id, chunk_of(tail_id, upstream._NO_CHUNK, (item,), 1))
            if tail_id == upstream._NO_CHUNK:
                self._head_chunk = chunk_id
            else:
                tail = self._chunks[tail_id]
                self._chunks = self._chunks.insert(
                    tail_id, chunk_of(tail.previous, chunk_id, tail.items, tail.live_count)
                )
            self._tail_chunk = chunk_id
            return chunk_id, 0

        def __setitem__(self, key: Any, value: Any) -> None:
            row = self._rows.get(key)
            if row is not None:
                _, ordinal, chunk_id, offset = row
                self._put_in_chunk(chunk_id, offset, (key, value))
                self._rows = self._rows.insert(key, (value, ordinal, chunk_id, offset))
                return
            ordinal = self._next_ordinal
            self._next_ordinal += 1
            self._rows = self._rows.insert(key, (value, ordinal, *self._append((key, value))))

        def replace_key(self, key: Any, replacement: Any) -> None:
            if key == replacement:
                return
            if replacement in self:
                raise KeyError(replacement)
            value, ordinal, chunk_id, offset = self._rows[key]
            self._put_in_chunk(chunk_id, offset, (replacement, value))
            self._rows = self._rows.remove(key).insert(replacement, (value, ordinal, chunk_id, offset))

        def __delitem__(self, key: Any) -> None:
            _, _, chunk_id, offset = self._rows[key]
            self._rows = self._rows.remove(key)
            chunk = self._chunks[chunk_id]
            remaining = chunk.live_count - 1
            if remaining:
                marked = (*chunk.items[:offset], upstream._DELETED, *chunk.items[offset + 1 :])
                if (len(marked) - remaining) * 2 < len(marked):
                    self._chunks = self._chunks.insert(
                        chunk_id, chunk_of(chunk.previous, chunk.following, marked, remaining)
                    )
                    return
                compacted = tuple(item for item in marked if item is not upstream._DELETED)
                self._chunks = self._chunks.insert(
                    chunk_id, chunk_of(chunk.previous, chunk.following, compacted, remaining)
                )
                for position, (shifted, _) in enumerate(compacted):
                    value, ordinal, _, _ = self._rows[shifted]
                    self._rows = self._rows.insert(shifted, (value, ordinal, chunk_id, position))
                return
            self._unlink(chunk_id, chunk)

        def _unlink(self, chunk_id: int, chunk: Any) -> None:
            """Take an emptied chunk out of the order."""
            self._chunks = self._chunks.remove(chunk_id)
            if chunk.previous == upstream._NO_CHUNK:
                self._head_chunk = chunk.following
            else:
                previous = self._chunks[chunk.previous]
                self._chunks = self._chunks.insert(
                    chunk.previous, chunk_of(previous.previous, chunk.following, previous.items, previous.live_count)
                )
            if chunk.following == upstream._NO_CHUNK:
                self._tail_chunk = chunk.previous
            else:
                following = self._chunks[chunk.following]
                self._chunks = self._chunks.insert(
                    chunk.following,
                    chunk_of(chunk.previous, following.following, following.items, following.live_count),
                )

        def clear(self) -> None:
            super().clear()
            self._rows = HashTrieMap()

        def copy(self) -> Any:
            result = super().copy()
            result._rows = self._rows
            return result

        def _snapshot_state(self) -> Any:
            return super()._snapshot_state(), self._rows

        def _restore_state(self, state: Any) -> None:
            base, self._rows = state
            super()._restore_state(base)

        def ordered_keys(self, candidates: Any, *, limit: int | None = None) -> list[Any]:
            present = (key for key in candidates if key in self)
            if limit is None:
                return sorted(present, key=self.ordinal_for)
            return [] if limit <= 0 else nsmallest(limit, present, key=self.ordinal_for)

        def ordinal_for(self, key: Any) -> int:
            return self._rows[key][1]

    return CompactCollection


def _compact_index_map_class(base: Any) -> Any:
    from mongoeco.engines import _memory_collection as upstream
    from rpds import HashTrieMap, HashTrieSet

    class CompactIndexMap(base):  # type: ignore[valid-type,misc]
        """mongoeco's index map with each key's bucket, ordinals and order in one entry of ``_entries``."""

        _next_membership_ordinal: int  # mongoeco's own

        def __init__(self, values: Any = ()) -> None:
            self._entries: Any = HashTrieMap()  # index key -> (bucket, {storage key: ordinal}, treap by ordinal)
            super().__init__(values)

        def __contains__(self, key: object) -> bool:
            return key in self._entries

        def __getitem__(self, key: tuple[Any, ...]) -> Any:
            return self._entries[key][0]

        def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
            if key in self._entries:
                del self[key]
            for storage_key in value:
                self.add(key, storage_key)

        def __delitem__(self, key: tuple[Any, ...]) -> None:
            self._entries = self._entries.remove(key)

        def __iter__(self) -> Iterator[tuple[Any, ...]]:
            return iter(self._entries)

        def __len__(self) -> int:
            return len(self._entries)

        def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
            entry = self._entries.get(key)
            return default if entry is None else entry[0]

        def clear(self) -> None:
            super().clear()
            self._entries = HashTrieMap()

        def pop(self, key: tuple[Any, ...], *default: Any) -> Any:
            if len(default) > 1:
                raise TypeError("pop expected at most two arguments")
            entry = self._entries.get(key)
            if entry is None:
                if default:
                    return default[0]
                raise KeyError(key)
            self._entries = self._entries.remove(key)
            return entry[0]

        def copy(self) -> Any:
            result = super().copy()
            result._entries = self._entries
            return result

        def __deepcopy__(self, memo: dict[int, object]) -> Any:
            result = super().__deepcopy__(memo)
            result._entries = deepcopy(self._entries, memo)
            return result

        def add(self, key: tuple[Any, ...], storage_key: Any, *, ordinal: int | None = None) -> None:
            entry = self._entries.get(key)
            if entry is not None and storage_key in entry[0]:
                return
            effective = self._next_membership_ordinal if ordinal is None else ordinal
            self._next_membership_ordinal = max(self._next_membership_ordinal, effective + 1)
            node = upstream._MembershipNode(effective, storage_key, upstream._expiry_priority(effective))
            if entry is None:
                entry = (HashTrieSet((storage_key,)), HashTrieMap({storage_key: effective}), node)
            else:
                bucket, ordinals, order = entry
                order = upstream._insert_membership(order, node)
                entry = (bucket.insert(storage_key), ordinals.insert(storage_key, effective), order)
            self._entries = self._entries.insert(key, entry)

        def discard(self, key: tuple[Any, ...], storage_key: Any) -> None:
            entry = self._entries.get(key)
            if entry is None or storage_key not in entry[0]:
                return
            bucket, ordinals, order = entry
            remaining = bucket.remove(storage_key)
            if not remaining:
                self._entries = self._entries.remove(key)
                return
            order = upstream._remove_membership(order, ordinals[storage_key])
            if order is None:
                raise RuntimeError("index membership order lost a non-empty bucket")
            self._entries = self._entries.insert(key, (remaining, ordinals.remove(storage_key), order))

        def ordinal_for(self, key: tuple[Any, ...], storage_key: Any) -> int | None:
            entry = self._entries.get(key)
            return None if entry is None else entry[1].get(storage_key)

        def ordered_storage_keys(self, key: tuple[Any, ...], *, limit: int | None = None) -> tuple[Any, ...]:
            entry = self._entries.get(key)
            return tuple(upstream._iter_membership_keys(None if entry is None else entry[2], limit))

        def _snapshot_state(self) -> Any:
            return super()._snapshot_state(), self._entries

        def _restore_state(self, state: Any) -> None:
            base, self._entries = state
            super()._restore_state(base)

    return CompactIndexMap


def _patch() -> None:
    from mongoeco.engines import memory

    _ORIGINALS.update(MemoryCollection=memory.MemoryCollection, MemoryIndexMap=memory.MemoryIndexMap)
    memory.MemoryCollection = _compact_collection_class(memory.MemoryCollection)  # type: ignore[misc]
    memory.MemoryIndexMap = _compact_index_map_class(memory.MemoryIndexMap)  # type: ignore[misc]
