"""The peers' server CPU, measured in this run on this machine, for ratios taken in one run.

    bash ../shared/peers/setup.sh DIR   # once: the peers' own benches and what they need (npm, PyPI)
    PEERBENCH=DIR python -m bench.push  # the benches then run the peers' benches first

With ``PEERBENCH`` set, the first ratio a bench prints runs Hocuspocus' bench (one document,
Yjs updates pipelined over one connection: its server CPU per update) and PouchDB's
(``_bulk_docs`` in batches of 50: its server CPU per document), 1 to 4 minutes, each reading its
server's CPU from /proc as ours is read. Without it, the figures recorded on 2026-11-22
(../shared/peers/README.md) stand in, and the output says so: the machine's speed varies
several-fold from day to day, so only ratios to figures taken in the same run compare.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from functools import cache
from pathlib import Path

RECORDED_US = {"pouchdb_bulk_docs": 42.0, "hocuspocus_update": 49.0}  # ../shared/peers/README.md, 2026-11-22
_HOCUSPOCUS = ["node", "bench_yws.js", "hocuspocus", "--updates", "5000", "--repeats", "3", "--s2-updates", "200"]
_POUCHDB = ["node", "bench_pouch.js", "--docs", "10000", "--repeats", "3", "--conflicts", "20"]


@cache
def peer_us() -> tuple[dict[str, float], str]:
    """The peers' server CPU in µs (per update, per document) and where the figures come from."""
    bench = os.environ.get("PEERBENCH")
    if not bench:
        return RECORDED_US, "recorded 2026-11-22 (set PEERBENCH for figures from this run)"
    hocuspocus = _run(Path(bench) / "hocus", _HOCUSPOCUS)
    pouchdb = _run(Path(bench) / "pouch", _POUCHDB)
    return {
        "pouchdb_bulk_docs": round(pouchdb["insert_server_cpu_us_per_doc"]["median"], 1),
        "hocuspocus_update": round(statistics.median(hocuspocus["raw"]["hocuspocus"]["S1cpu"]), 1),
    }, "measured in this run"


def _run(folder: Path, command: list[str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([*command, "--json", out.name], cwd=folder, check=True, capture_output=True, timeout=900)
        return json.loads(Path(out.name).read_text())
