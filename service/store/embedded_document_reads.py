"""Embedded store (mongoeco 4.11.0, SQLite engine): reading a stored document does not inspect
the codec's signature again.

``SQLiteEngine._decode_codec_payload`` (sqlite.py:1480) runs for every document the engine
reads, and asks ``inspect.signature`` of its codec's ``decode`` each time whether it takes
``preserve_bson_wrappers``: ~10-20 µs a document, a tenth of an empty pull's store CPU on a
store of 300k documents (the pull reads the rep's outlets). The answer depends on the codec
only, so this patch asks once per codec and decodes the same way.
"""

from __future__ import annotations

import inspect
from typing import Any

from service.store.embedded_pin import apply_once

_ORIGINALS: dict[str, Any] = {}


def apply() -> bool:
    return apply_once(_ORIGINALS, _patch)


def _patch() -> None:
    from mongoeco.engines import sqlite

    engine_cls = sqlite.SQLiteEngine
    _ORIGINALS["decode"] = engine_cls._decode_codec_payload
    takes_wrappers: dict[Any, bool] = {}  # by codec: whether its decode takes preserve_bson_wrappers

    def _decode_codec_payload(self: Any, payload: object, *, preserve_bson_wrappers: bool) -> Any:
        codec = self._codec
        if (takes := takes_wrappers.get(codec)) is None:
            try:
                takes = "preserve_bson_wrappers" in inspect.signature(codec.decode).parameters
            except (TypeError, ValueError):
                takes = False
            takes_wrappers[codec] = takes
        if takes:
            return codec.decode(payload, preserve_bson_wrappers=preserve_bson_wrappers)
        return codec.decode(payload)

    engine_cls._decode_codec_payload = _decode_codec_payload  # type: ignore[method-assign]
