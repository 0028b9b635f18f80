"""First run: a fresh data dir and no admin; `serve` creates one and says once how to sign in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import LoggedServer

ROOT = Path(__file__).parents[2]


def start(env: dict[str, str], data_dir: Path, log: Path) -> LoggedServer:
    server = LoggedServer(["--data-dir", str(data_dir)], env)
    server.log = log
    return server.start()


def sign_in(server: LoggedServer, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url)
    response = client.post("/auth/login", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrfToken"]
    return client


def test_a_fresh_data_dir_gets_an_admin_whose_sign_in_is_printed_once(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_") and k != "MONGODB_URI"}
    env |= {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    data_dir = tmp_path / "data"
    first = start(env, data_dir, tmp_path / "first.log")
    try:
        assert httpx.get(f"{first.url}/").headers["location"] == "/console/"
        assert "<title>FieldSync" in httpx.get(f"{first.url}/console/").text
        found = re.search(r"as: (\S+)\s+password: (\S+)", first.log.read_text())
        assert found, first.log.read_text()
        name, password = found.groups()
        console = sign_in(first, name, password)
        me = console.post("/graphql", json={"query": "{me{name role}}"}).json()
        assert me == {"data": {"me": {"name": "admin", "role": "ADMIN"}}}
        console.close()
        # the admin commands work on the same data dir while the service runs on it
        flags = ["--password", "--data-dir", str(data_dir)]
        created = subprocess.run(
            [sys.executable, "-m", "service.cli", "users", "create", "--name", "Mia", "--role", "MANAGER", *flags],
            input="mia-password-1\n",  # piped: the first line is the password
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "(MANAGER) token: fs_" in created.stdout
        manager = sign_in(first, "mia", "mia-password-1")
        users = manager.post("/graphql", json={"query": "{users{name role}}"}).json()["data"]["users"]
        assert {"name": "Mia", "role": "MANAGER"} in users
        manager.close()
    finally:
        first.stop()

    second = start(env, data_dir, tmp_path / "second.log")
    try:
        said = second.log.read_text()
        assert password not in said and "password" not in said.lower(), said
        sign_in(second, name, password).close()  # the first password still works
    finally:
        second.stop()
