from collections.abc import Buffer
from typing import Any

def uints(data: Buffer, start: int = 0, /) -> list[int]: ...
def read_update(
    data: Buffer, item_type: type[tuple[Any, ...]], /
) -> tuple[list[Any], list[tuple[int, int, int]], dict[int, int]]: ...
