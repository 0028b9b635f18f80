"""Phones sending photos with tuspy, each as its own process (it imports only tuspy and the
standard library, so it starts fast), and a wait until a server has stored what paused
phones had sent.

    python -m tests.e2e.phones BASE_URL DEVICE_TOKEN PATH ATTACHMENT_ID
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

PATCH_BYTES = 1024 * 1024  # a phone on patchy 4G sends small PATCHes


def start_phone(base: str, token: str, path: str, attachment_id: str, env: dict[str, str]) -> subprocess.Popen:
    """A phone uploading the file at ``path`` as ``attachment_id``; it exits 0 once the server has it all."""
    command = [sys.executable, "-m", "tests.e2e.phones", base, token, path, attachment_id]
    return subprocess.Popen(command, env=env, cwd=Path(__file__).parents[2])


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(pids: list[int]) -> None:
    """Until these processes use (almost) no CPU: what paused phones had sent is stored."""
    used = sum(cpu_seconds(pid) for pid in pids)
    while True:
        time.sleep(0.2)
        used, before = sum(cpu_seconds(pid) for pid in pids), used
        if used - before < 0.02:
            return


def main(base: str, token: str, path: str, attachment_id: str) -> None:
    from tusclient import client as tus

    phone = tus.TusClient(f"{base}/files/", headers={"Authorization": f"Bearer {token}"})
    phone.uploader(path, chunk_size=PATCH_BYTES, metadata={"attachmentId": attachment_id}).upload()


if __name__ == "__main__":
    main(*sys.argv[1:5])
