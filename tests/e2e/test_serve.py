"""`fieldsync serve` as a process: start, push over HTTP, survive a SIGKILL mid-push."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Server
from tests.e2e.test_live_refusals import assign_outlet
from tests.factories import pushed_visit

PUSH = (
    """mutation($i: PushInput!){ pushChanges(input:$i){ results{ offlineId status duplicateOf record{ version } } } }"""
)


def setup_rep(server: Server) -> str:
    rep = server.data('mutation{createUser(input:{name:"Ali", role:REP}){token}}')["createUser"]["token"]
    token = server.data(
        'mutation{registerDevice(input:{deviceId:"dev1", name:"Phone", platform:"android"}){token}}', token=rep
    )["registerDevice"]["token"]
    assign_outlet(server, "o1", "Kedai Ali", token)
    return token


def visits(n: int) -> list[dict]:
    return [pushed_visit(f"c{i}", f"v{i}") for i in range(n)]


def test_serve_in_memory_answers_health_and_graphql(serve):
    server = serve("--memory")
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    token = setup_rep(server)
    results = server.data(PUSH, {"i": {"deviceId": "dev1", "changes": visits(3)}}, token)["pushChanges"]["results"]
    assert [r["status"] for r in results] == ["APPLIED"] * 3
    assert "fieldsync_pushes_total 1" in httpx.get(f"{server.url}/metrics").text


def test_a_push_cut_off_by_sigkill_and_retried_decides_every_change_exactly_once(serve, tmp_path: Path):
    data_dir = str(tmp_path / "data")
    settings = {"FIELDSYNC_MAX_CHANGES_PER_PUSH": "2000"}
    server = serve("--data-dir", data_dir, **settings)
    token = setup_rep(server)
    queue = visits(400)

    def push_and_get_cut_off() -> None:
        # The server dies under us: exactly what a phone sees when signal drops.
        with contextlib.suppress(httpx.HTTPError):
            server.call(PUSH, {"i": {"deviceId": "dev1", "changes": queue}}, token, timeout=300)

    pushing = threading.Thread(target=push_and_get_cut_off)
    pushing.start()
    deadline = time.monotonic() + 120
    while _committed(server) < 100 and time.monotonic() < deadline:  # some chunks committed, not all
        time.sleep(0.02)
    server.kill()
    pushing.join()

    restarted = serve("--data-dir", data_dir, **settings)
    results = restarted.data(PUSH, {"i": {"deviceId": "dev1", "changes": queue}}, token, timeout=300)["pushChanges"][
        "results"
    ]
    statuses = [r["status"] for r in results]
    assert set(statuses) <= {"APPLIED", "DUPLICATE"}
    assert "DUPLICATE" in statuses and "APPLIED" in statuses, "the kill should have landed mid-push"
    assert all(r["record"]["version"] == 1 for r in results)
    assert all(r["duplicateOf"] in (None, "APPLIED") for r in results)
    history = restarted.data("query{syncHistory(filter:{actions:[APPLIED]}, first:1000){edges{node{offlineId}}}}")[
        "syncHistory"
    ]["edges"]
    applied = [edge["node"]["offlineId"] for edge in history]
    assert sorted(applied) == sorted(c["offlineId"] for c in queue), "each change applied exactly once"


def _committed(server: Server) -> int:
    """Changes committed so far, chunk by chunk, as the server's metrics tell."""
    try:
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0
    for line in text.splitlines():
        if line.startswith("fieldsync_changes_committed_total"):
            return int(float(line.split()[-1]))
    return 0
