"""The frames ``service.api.wire`` writes are the frames websockets itself would send as a server."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from service.api.wire import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])  # 7-, 16- and 64-bit lengths
def test_a_text_frame_is_what_websockets_serializes(size: int):
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)
