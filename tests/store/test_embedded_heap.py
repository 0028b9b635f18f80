"""The embedded store's heap is its data: full collections walk only what came since the last one."""

from __future__ import annotations

import subprocess
import sys

FROZEN = """
import gc
from service.store.embedded import _freeze_what_survives
_freeze_what_survives()
at_start = gc.get_freeze_count()
data = [{"document": [i]} for i in range(10_000)]  # what the store holds, long-lived
gc.collect()
print(at_start > 0, gc.get_freeze_count() >= at_start + len(data))
"""


def test_what_start_up_built_and_what_survives_a_full_collection_is_frozen():
    said = subprocess.run([sys.executable, "-c", FROZEN], capture_output=True, text=True, check=True).stdout
    assert said.split() == ["True", "True"]
