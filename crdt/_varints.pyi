from collections.abc import Buffer
from typing import Any

def state_vector_clock(data: Buffer, client: int, /) -> int: ...
def read_update(
    data: Buffer, item_type: type[tuple[Any, ...]], /
) -> tuple[list[Any], list[tuple[int, int, int]], dict[int, int]]: ...
