"""The reference JavaScript `yjs` library against a running server: its documents and the server agree.

Drives tests/js/merge_rule.test.mjs with `node --test` (yjs pinned in tests/js/package-lock.json,
installed by `make test`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import ADMIN, Server

JS = Path(__file__).parents[1] / "js"


def device_token(server: Server, rep_token: str, device_id: str) -> str:
    return server.data(
        "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
        {"i": {"deviceId": device_id, "name": device_id, "platform": "web"}},
        token=rep_token,
    )["registerDevice"]["token"]


def test_yjs_documents_and_a_patch_converge_and_a_phone_lives_through_a_compaction(serve) -> None:
    server = serve("--memory", FIELDSYNC_CRDT_COMPACT_BYTES="512")
    rep = server.data('mutation{createUser(input:{name:"Siti", role:REP}){token}}')["createUser"]["token"]
    tokens = {f"DEVICE_{name}_TOKEN": device_token(server, rep, f"js-{name.lower()}") for name in "ABC"}
    result = subprocess.run(
        ["node", "--test", str(JS / "merge_rule.test.mjs")],
        env={**os.environ, "FIELDSYNC_URL": server.url, "MANAGER_TOKEN": ADMIN, **tokens},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 3" in result.stdout, result.stdout
