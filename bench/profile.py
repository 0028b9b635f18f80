"""Where a real server's CPU goes: py-spy (``--gil``) on `fieldsync serve` during mixed pushes.

    python -m bench.profile [--batch 1 --batch 50] [--changes 1000] [--out bench/profiles]

For each batch size, samples the server process with py-spy while it serves mixed
pushes, and writes the top 15 functions by self time (share of the samples whose
innermost frame is that function) to ``<out>/push-batch<N>.txt``. py-spy is not a
dependency of the service: ``pip install py-spy``.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.push import served_rep, served_scenario
from bench.served import served

TOP = 15


def self_time(raw: str) -> tuple[int, list[tuple[str, int]]]:
    """Samples in all, and samples per innermost function, from py-spy's collapsed stacks."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[re.sub(r":\d+\)$", ")", stack.split(";")[-1].strip())] += int(count)
    return sum(counts.values()), counts.most_common(TOP)


def profile(size: int, changes: int, out: Path) -> None:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    assert spy, "pip install py-spy"
    pushes = itertools.count()
    with served() as server, tempfile.TemporaryDirectory() as tmp:
        rep = served_rep(server)
        served_scenario(server, rep, "mixed", size, changes // 10, pushes)  # warm every path up first
        raw = Path(tmp) / "raw.txt"
        options = ["--gil", "--nonblocking", "--format", "raw", "--rate", "250"]
        recorder = subprocess.Popen(
            [spy, "record", *options, "-p", str(server.process.pid), "-o", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        served_scenario(server, rep, "mixed", size, changes, pushes)
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=60)
        total, top = self_time(raw.read_text())
    lines = [f"py-spy --gil, fieldsync serve, mixed pushes of {size}: top {TOP} by self time ({total} samples)"]
    lines += [f"{count / total:6.1%}  {frame}" for frame, count in top]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"push-batch{size}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, action="append", help="batch sizes (default: 1 and 50)")
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/profiles"))
    args = parser.parse_args()
    for size in args.batch or [1, 50]:
        profile(size, args.changes if size > 1 else args.changes // 5, args.out)


if __name__ == "__main__":
    main()
