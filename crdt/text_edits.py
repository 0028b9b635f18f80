"""Moving a text edit made on one copy of a text onto another copy that changed meanwhile.

An edit made on ``base`` that turned it into ``edited`` is carried onto ``current``
(``base`` as others changed it since) as the characters it inserted and deleted:
inserts land where their neighbours in ``base`` are now; only characters of
``base`` still in ``current`` are deleted, so what others typed meanwhile stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import Match, SequenceMatcher


@dataclass(frozen=True)
class TextEdit:
    at: int  # a position in ``current``
    delete: int  # characters deleted there
    insert: str  # then inserted there


def text_edits(base: str, edited: str, current: str) -> list[TextEdit]:
    """The edits, in ``current``'s positions, the last position first (so each applies as given)."""
    if base == edited:
        return []
    kept = [block for block in SequenceMatcher(None, base, current, autojunk=False).get_matching_blocks() if block.size]
    edits: list[TextEdit] = []
    for tag, start, end, new_start, new_end in SequenceMatcher(None, base, edited, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        for block in kept:  # the deleted characters still in current, block by block
            low, high = max(start, block.a), min(end, block.a + block.size)
            if low < high:
                edits.append(TextEdit(block.b + low - block.a, high - low, ""))
        if new_end > new_start:
            edits.append(TextEdit(_moved(start, kept), 0, edited[new_start:new_end]))
    return sorted(edits, key=lambda edit: (edit.at, edit.insert == ""), reverse=True)


def _moved(position: int, kept: list[Match]) -> int:
    """Where ``position`` of base is in current: after the last kept character before it."""
    moved = 0
    for block in kept:
        if block.a >= position:
            break
        moved = block.b + min(position, block.a + block.size) - block.a
    return moved
