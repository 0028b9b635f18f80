"""No token, and no token hash, ever reaches a log line or an error message.

Every path that handles a secret is exercised with all loggers at DEBUG: creating users,
registering devices, issuing and revoking tokens, unknown/expired/revoked tokens over HTTP
and in a WebSocket ``connection_init``, and a connection whose token is revoked while open.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from service.auth.access import AccessService
from service.auth.tokens import token_hash
from service.settings import Settings
from tests.api.test_authorization_matrix import AsgiWebSocket, Closed, Served, serve_in_process

PROBE = "query{me{id}}"
PASTED = "fs_pasted-secret"  # a token pasted where an id goes


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with serve_in_process(settings) as started:
        yield started


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the records carry: formatted lines, tracebacks, arguments and extra attributes."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    parts = [caplog.text]
    for record in caplog.records:
        parts.append(formatter.format(record))
        parts.append(repr(record.args))
        parts.append(repr({k: v for k, v in vars(record).items() if k not in ("msg", "args")}))
    return "\n".join(parts)


async def exercise_every_secret_path(served: Served) -> tuple[list[str], str]:
    """The secrets handed out or tried, and every error message and close reason callers saw."""
    api = served.api
    secrets: list[str] = ["admin-secret-token"]
    errors: list[str] = []  # every error message and close reason a caller saw

    async def call(query: str, token: str | None, variables: dict | None = None) -> dict:
        body = await api.call(query, variables, token)
        errors.extend(json.dumps(error) for error in body.get("errors") or [])
        return body

    created = await call('mutation{createUser(input:{name:"Ali", role:REP}){user{id} token}}', "admin-secret-token")
    rep_id, rep = created["data"]["createUser"]["user"]["id"], created["data"]["createUser"]["token"]
    registered = await call(
        'mutation{registerDevice(input:{deviceId:"dev1", name:"Phone", platform:"android"}){token}}', rep
    )
    device = registered["data"]["registerDevice"]["token"]
    issued = await call(f'mutation{{issueToken(userId:"{rep_id}"){{token info{{id}}}}}}', "admin-secret-token")
    revoked, revoked_id = issued["data"]["issueToken"]["token"], issued["data"]["issueToken"]["info"]["id"]
    await call(f'mutation{{revokeToken(tokenId:"{revoked_id}"){{id}}}}', rep)
    expired = (
        await AccessService(
            served.services.store, token_ttl=timedelta(hours=1), clock=lambda: datetime.now(UTC) - timedelta(days=1)
        ).issue_token(rep_id)
    ).token
    unknown = "fs_unknown-" + "x" * 40
    secrets += [rep, device, revoked, expired, unknown]

    for token in (unknown, revoked, expired, "not even a token format", device + "x"):
        await call(PROBE, token)
        await call('mutation{pushChanges(input:{deviceId:"dev1", changes:[]}){syncId}}', token)  # push refusal path
    response = await api.http.post("/graphql", json={"query": PROBE}, headers={"Authorization": f"Basic {rep}"})
    errors.append(response.text)
    # the token pasted where an id goes: echoed only to the caller who sent it, never logged
    await call("mutation($t: ID!){revokeToken(tokenId:$t){id}}", "admin-secret-token", {"t": PASTED})
    secrets.append(PASTED)

    for payload in (
        {"authorization": f"Bearer {unknown}"},
        {"authorization": f"Bearer {revoked}"},
        {"authorization": f"Bearer {expired}"},
        {"authorization": unknown},
        {},
    ):
        socket = await AsgiWebSocket.open(served.app, payload)
        try:
            with pytest.raises(Closed) as closed:
                await socket.receive()
            errors.append(closed.value.reason)
        finally:
            await socket.close()
    socket = await AsgiWebSocket.open(served.app, {"authorization": f"Bearer {device}"})
    try:
        assert (await socket.receive())["type"] == "connection_ack"
        await call('mutation{revokeDevice(deviceId:"dev1"){id}}', "admin-secret-token")
        await socket.send({"id": "1", "type": "subscribe", "payload": {"query": "subscription{refusalEvents{type}}"}})
        with pytest.raises(Closed) as closed:
            await socket.receive()
        errors.append(closed.value.reason)
    finally:
        await socket.close()

    return secrets, "\n".join(errors)


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error", "strawberry", "fieldsync", "pymongo", "httpx"):
        caplog.set_level(logging.DEBUG, logger=name)


async def test_no_token_reaches_logs_and_no_token_or_hash_reaches_error_messages(
    served: Served, caplog: pytest.LogCaptureFixture
):
    capture_everything(caplog)
    secrets, shown = await exercise_every_secret_path(served)
    logged = log_text(caplog)
    assert "fieldsync" in logged or "pymongo" in logged  # the capture did see the service at work
    assert "token revoked" in shown and "unknown token" in shown and "token expired" in shown
    for secret in secrets:
        if secret == PASTED:
            continue  # sent as an id: echoed to its sender, and in DEBUG query logs (the test below)
        assert secret not in logged, "a token reached the logs"
        assert secret not in shown, "a token reached an error message"
        assert token_hash(secret) not in shown, "a token hash reached an error message"


async def test_no_token_hash_reaches_logs_even_at_debug(served: Served, caplog: pytest.LogCaptureFixture):
    capture_everything(caplog)
    secrets, _ = await exercise_every_secret_path(served)
    logged = log_text(caplog)
    leaked = [secret for secret in secrets if token_hash(secret) in logged or secret in logged]
    assert not leaked, f"{len(leaked)} tokens or token hashes reached the logs"
