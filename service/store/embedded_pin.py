"""The mongoeco version the embedded store's patches are written against, and applying one once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PINNED_VERSION = "4.11.0"


def apply_once(originals: dict[str, Any], patch: Callable[[], None]) -> bool:
    """Run ``patch`` (which fills ``originals``) once, on the pinned mongoeco only; False on any other."""
    import mongoeco

    if mongoeco.__version__ != PINNED_VERSION:
        return False
    if not originals:
        patch()
    return True
