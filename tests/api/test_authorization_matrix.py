"""The authorization matrix (service/api/authorization.py) holds for every operation and every caller.

Every denied (operation, caller) pair is called and must answer FORBIDDEN; every allowed
pair is called and must not; every operation refuses a missing, unknown, expired or
revoked token with UNAUTHENTICATED. Subscriptions go through the real WebSocket
transport, in process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from service.api.authorization import AUTHORIZATION, Caller, denied, markdown
from service.api.schema import build_schema
from service.app import create_app
from service.auth.access import AccessService, AuthError
from service.services import Services
from service.settings import Settings
from service.store import identity
from tests.api.conftest import ADMIN, Api

# One call per operation, valid for the schema, so that an error can only come from who calls.
PROBES: dict[str, tuple[str, dict[str, Any]]] = {
    "me": ("query{me{id}}", {}),
    "users": ("query{users{id}}", {}),
    "devices": ("query{devices{id}}", {}),
    "pull": ("query($d: ID!){pull(deviceId:$d){cursor}}", {"d": "dev1"}),
    "record": ('query{record(recordType:OUTLET, recordId:"o1"){version}}', {}),
    "conflicts": ("query{conflicts{id}}", {}),
    "syncHealth": ("query{syncHealth{generatedAt}}", {}),
    "refusals": ("query{refusals{totalCount}}", {}),
    "syncHistory": ("query{syncHistory{pageInfo{hasNextPage}}}", {}),
    "syncReport": ('query{syncReport(date:"2026-11-20"){total}}', {}),
    "anomalies": ("query{anomalies{totalCount}}", {}),
    "createUser": ('mutation{createUser(input:{name:"Probe", role:REP}){user{id}}}', {}),
    "changePassword": ('mutation{changePassword(input:{currentPassword:"x", newPassword:"y"}){id}}', {}),
    "registerDevice": ('mutation{registerDevice(input:{deviceId:"dev1", name:"P", platform:"ios"}){device{id}}}', {}),
    "issueToken": ("mutation($u: ID!){issueToken(userId:$u){info{id}}}", {"u": "<rep>"}),
    "revokeToken": ('mutation{revokeToken(tokenId:"no-such-token"){id}}', {}),
    "revokeDevice": ('mutation{revokeDevice(deviceId:"no-such-device"){id}}', {}),
    "pushChanges": ('mutation{pushChanges(input:{deviceId:"dev1", changes:[]}){syncId}}', {}),
    "resolveConflict": ('mutation{resolveConflict(input:{conflictId:"none", resolution:DISCARD}){conflict{id}}}', {}),
    "writeRecord": ('mutation{writeRecord(input:{recordType:OUTLET, recordId:"o1", fields:{name:"x"}}){status}}', {}),
    "acknowledgeRefusal": ('mutation{acknowledgeRefusal(id:"no-such"){id}}', {}),
    "dismissRefusal": ('mutation{dismissRefusal(id:"no-such"){id}}', {}),
    "reportDeviceStatus": ('mutation{reportDeviceStatus(input:{deviceId:"dev1", queueDepth:0}){id}}', {}),
    "reviewAnomaly": ('mutation{reviewAnomaly(id:"no-such", status:DISMISSED){id}}', {}),
    "refusalEvents": ("subscription{refusalEvents{type}}", {}),
    "syncStatus": ("subscription{syncStatus{status}}", {}),
    "anomalyEvents": ("subscription{anomalyEvents{type}}", {}),
}
AUTH_CODES = {"FORBIDDEN", "UNAUTHENTICATED"}


# -- an app in process, with its WebSocket reachable -------------------------------------------


@dataclass
class Served:
    app: Starlette
    api: Api

    @property
    def services(self) -> Services:
        services = self.app.state.fieldsync["services"]
        assert isinstance(services, Services)
        return services


@contextlib.asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[Served]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://fieldsync.test") as http,
    ):
        yield Served(app, Api(http))


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with serve_in_process(settings) as started:
        yield started


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code, self.reason = code, reason


class AsgiWebSocket:
    """A graphql-transport-ws client that drives the ASGI app directly (no socket, same event loop)."""

    def __init__(self, app: Starlette, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "scheme": "ws",
            "query_string": b"",
            "client": ("127.0.0.1", 50000),
            "server": ("fieldsync.test", 80),
            "subprotocols": ["graphql-transport-ws"],
            "headers": [
                (b"host", b"fieldsync.test"),
                (b"sec-websocket-protocol", b"graphql-transport-ws"),
                *(headers or []),
            ],
        }
        self._task = asyncio.create_task(app(scope, self._to_app.get, self._from_app.put))

    @classmethod
    async def open(cls, app: Starlette, payload: Any, cookie: str | None = None) -> AsgiWebSocket:
        """Connect and send connection_init with ``payload``; the ack (or a close) is the caller's to read."""
        socket = cls(app, [(b"cookie", f"fieldsync_session={cookie}".encode())] if cookie else None)
        await socket._to_app.put({"type": "websocket.connect"})
        accepted = await asyncio.wait_for(socket._from_app.get(), 5)
        assert accepted["type"] == "websocket.accept", accepted
        await socket.send({"type": "connection_init", "payload": payload})
        return socket

    async def send(self, message: Any) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self, timeout: float = 5) -> dict[str, Any]:
        message = await asyncio.wait_for(self._from_app.get(), timeout)
        if message["type"] == "websocket.close":
            raise Closed(message.get("code", 1000), message.get("reason", ""))
        return json.loads(message["text"])

    async def close(self) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self._task, 5)


# -- callers ------------------------------------------------------------------------------------


@dataclass
class Callers:
    tokens: dict[Caller, str]
    rep_id: str


async def callers(api: Api) -> Callers:
    _, manager = await api.user("Mia", "MANAGER")
    rep_id, rep = await api.user("Ali", "REP")
    _, integrator = await api.user("Ian", "INTEGRATOR")
    device = await api.device(rep, "dev1")
    tokens = {
        Caller.ADMIN: ADMIN,
        Caller.MANAGER: manager,
        Caller.REP: rep,
        Caller.DEVICE: device,
        Caller.INTEGRATOR: integrator,
    }
    return Callers(tokens, rep_id)


def probe(operation: str, rep_id: str) -> tuple[str, dict[str, Any]]:
    query, variables = PROBES[operation]
    return query, {name: rep_id if value == "<rep>" else value for name, value in variables.items()}


def codes(body: dict[str, Any]) -> set[str]:
    return {(error.get("extensions") or {}).get("code", "") for error in body.get("errors") or []}


async def subscribe(app: Starlette, token: str, query: str, session: Session | None = None) -> dict[str, Any]:
    """The first message a subscription answers with (an error for a denied caller); by token or session."""
    payload = {"csrf": session.csrf} if session else {"authorization": f"Bearer {token}"}
    socket = await AsgiWebSocket.open(app, payload, cookie=session.cookie if session else None)
    try:
        assert (await socket.receive())["type"] == "connection_ack"
        await socket.send({"id": "1", "type": "subscribe", "payload": {"query": query}})
        return await socket.receive(timeout=2)
    finally:
        await socket.close()


def operations() -> dict[str, str]:
    """Every field of Query, Mutation and Subscription in the served schema, by name, with its kind."""
    schema = build_schema()._schema
    found: dict[str, str] = {}
    for kind, root in (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    ):
        assert root is not None
        found.update({name: kind for name in root.fields})
    return found


@dataclass(frozen=True)
class Session:
    """A console sign-in: the cookie and its CSRF token."""

    cookie: str
    csrf: str


async def signed_in(served: Served, user_id: str) -> Session:
    """Give the user a password and sign in with it, as the console does."""
    user = await identity.get_user(served.services.store, user_id)
    assert user is not None
    await served.services.sign_in.set_password(user, "a-password-for-tests")
    response = await served.api.http.post("/auth/login", json={"name": user.name, "password": "a-password-for-tests"})
    served.api.http.cookies.clear()  # each call below presents its cookie itself
    return Session(response.cookies["fieldsync_session"], response.json()["csrfToken"])


async def call_signed_in(served: Served, session: Session, query: str, variables: dict[str, Any], csrf: bool = True):
    response = await served.api.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Cookie": f"fieldsync_session={session.cookie}", **({"X-CSRF-Token": session.csrf} if csrf else {})},
    )
    return response.json()


# -- the tests ----------------------------------------------------------------------------------


def test_every_operation_of_the_schema_has_an_entry_for_every_caller():
    missing = sorted(set(operations()) - set(AUTHORIZATION))
    assert not missing, f"add these operations to service/api/authorization.py: {missing}"
    stale = sorted(set(AUTHORIZATION) - set(operations()))
    assert not stale, f"these entries name no operation of the schema: {stale}"
    assert not sorted(set(operations()) - set(PROBES)), "add a probe call for each new operation"
    for operation, access in AUTHORIZATION.items():
        assert set(access) == set(Caller), operation


def test_the_security_doc_carries_the_matrix_as_it_is_in_the_code():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text()
    assert markdown() in doc, "docs/security.md: paste service.api.authorization.markdown() output"


async def test_every_denied_pair_is_forbidden_and_every_allowed_pair_is_not(served: Served):
    who = await callers(served.api)
    await served.api.write("OUTLET", "o1", {"name": "Kedai Ali"})
    kinds = operations()
    wrong: list[str] = []
    for operation in AUTHORIZATION:
        query, variables = probe(operation, who.rep_id)
        refused = denied(operation)
        for caller, token in who.tokens.items():
            if kinds[operation] == "subscription":
                if caller not in refused:
                    continue  # an allowed subscription waits for events; its scope is tested below
                message = await subscribe(served.app, token, query)
                found = codes(
                    message.get("payload")
                    if isinstance(message.get("payload"), dict)
                    else {"errors": message.get("payload")}
                )
            else:
                found = codes(await served.api.call(query, variables, token))
            if caller in refused and "FORBIDDEN" not in found:
                wrong.append(f"{operation} as {caller.value}: expected FORBIDDEN, got {found or 'success'}")
            if caller not in refused and found & AUTH_CODES:
                wrong.append(f"{operation} as {caller.value}: allowed by the matrix, got {found}")
    assert not wrong, "\n".join(wrong)


async def test_a_signed_in_admin_or_manager_is_allowed_and_denied_exactly_as_by_token(served: Served):
    who = await callers(served.api)
    manager_id = (await served.api.data("query{me{id}}", token=who.tokens[Caller.MANAGER]))["me"]["id"]
    sessions = {Caller.ADMIN: await signed_in(served, "admin"), Caller.MANAGER: await signed_in(served, manager_id)}
    await served.api.write("OUTLET", "o1", {"name": "Kedai Ali"})
    kinds = operations()
    wrong: list[str] = []
    for operation in AUTHORIZATION:
        query, variables = probe(operation, who.rep_id)
        for caller, session in sessions.items():
            refused = caller in denied(operation)
            if kinds[operation] == "subscription":
                if not refused:
                    continue  # an allowed subscription waits for events; the session's socket is acked below
                message = await subscribe(served.app, "", query, session)
                found = codes({"errors": message["payload"]}) if message["type"] == "error" else set()
            else:
                found = codes(await call_signed_in(served, session, query, variables))
                without_csrf = codes(await call_signed_in(served, session, query, variables, csrf=False))
                if without_csrf != {"UNAUTHENTICATED"}:
                    wrong.append(f"{operation} as {caller.value} session without CSRF token: {without_csrf}")
            if refused and "FORBIDDEN" not in found:
                wrong.append(f"{operation} as {caller.value} session: expected FORBIDDEN, got {found or 'success'}")
            if not refused and found & AUTH_CODES:
                wrong.append(f"{operation} as {caller.value} session: allowed by the matrix, got {found}")
    assert not wrong, "\n".join(wrong)
    manager = sessions[Caller.MANAGER]
    socket = await AsgiWebSocket.open(served.app, {"csrf": manager.csrf}, cookie=manager.cookie)
    assert (await socket.receive())["type"] == "connection_ack"
    await socket.close()
    socket = await AsgiWebSocket.open(served.app, {}, cookie=manager.cookie)  # no CSRF token
    with pytest.raises(Closed) as closed:
        await socket.receive()
    assert closed.value.code == 4403
    await socket.close()


async def test_every_operation_refuses_missing_unknown_expired_and_revoked_tokens(served: Served):
    who = await callers(served.api)
    access = AccessService(
        served.services.store, token_ttl=timedelta(days=1), clock=lambda: datetime.now(UTC) - timedelta(days=2)
    )
    expired = (await access.issue_token(who.rep_id)).token
    revoked_data = await served.api.data(f'mutation{{issueToken(userId:"{who.rep_id}"){{token info{{id}}}}}}')
    revoked = revoked_data["issueToken"]["token"]
    await served.api.data(f'mutation{{revokeToken(tokenId:"{revoked_data["issueToken"]["info"]["id"]}"){{revokedAt}}}}')
    bad_tokens = {"none": None, "unknown": "fs_" + "A" * 43, "expired": expired, "revoked": revoked}
    kinds = operations()
    wrong: list[str] = []
    for operation in AUTHORIZATION:
        query, variables = probe(operation, who.rep_id)
        for label, token in bad_tokens.items():
            if kinds[operation] == "subscription":
                socket = await AsgiWebSocket.open(served.app, {"authorization": f"Bearer {token}"} if token else {})
                try:
                    answer = await socket.receive()
                    wrong.append(f"{operation} with a {label} token: connection accepted ({answer})")
                except Closed as closed:
                    if closed.code != 4403:
                        wrong.append(f"{operation} with a {label} token: closed {closed.code}, expected 4403")
                finally:
                    await socket.close()
                continue
            body = await served.api.call(query, variables, token)
            if codes(body) != {"UNAUTHENTICATED"} or any((body.get("data") or {}).values()):
                wrong.append(f"{operation} with a {label} token: {body}")
    assert not wrong, "\n".join(wrong)


async def test_the_token_ttl_setting_dates_new_tokens_and_expired_ones_say_so(settings: Settings):
    app = create_app(dataclasses.replace(settings, token_ttl_days=30))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http)
        rep_id, _ = await api.user("Ali", "REP")
        info = (await api.data(f'mutation{{issueToken(userId:"{rep_id}"){{info{{expiresAt}}}}}}'))["issueToken"]
        expires = datetime.fromisoformat(info["info"]["expiresAt"])
        assert timedelta(days=29.9) < expires - datetime.now(UTC) <= timedelta(days=30)
        services = app.state.fieldsync["services"]
        stale = await AccessService(
            services.store, token_ttl=timedelta(days=30), clock=lambda: datetime.now(UTC) - timedelta(days=31)
        ).issue_token(rep_id)
        body = await api.call("query{me{id}}", token=stale.token)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert body["errors"][0]["message"] == "token expired"


async def test_revocation_takes_effect_on_the_very_next_request(served: Served):
    api = served.api
    rep_id, rep = await api.user("Ali", "REP")
    device = await api.device(rep, "dev1")
    assert (await api.data("query{me{id}}", token=device))["me"]["id"] == rep_id
    await api.data('mutation{revokeDevice(deviceId:"dev1"){revokedAt}}')
    body = await api.call("query{me{id}}", token=device)
    assert (codes(body), body["errors"][0]["message"]) == ({"UNAUTHENTICATED"}, "token revoked")
    issued = (await api.data(f'mutation{{issueToken(userId:"{rep_id}"){{token info{{id}}}}}}'))["issueToken"]
    assert (await api.data("query{me{id}}", token=issued["token"]))["me"]["id"] == rep_id
    await api.data(f'mutation{{revokeToken(tokenId:"{issued["info"]["id"]}"){{id}}}}', token=rep)  # the rep itself
    assert codes(await api.call("query{me{id}}", token=issued["token"])) == {"UNAUTHENTICATED"}


async def test_another_instance_that_remembers_a_token_sees_its_revocation_on_the_next_request(served: Served):
    api = served.api
    rep_id, rep = await api.user("Ali", "REP")
    device = await api.device(rep, "dev1")
    issued = (await api.data(f'mutation{{issueToken(userId:"{rep_id}"){{token info{{id}}}}}}'))["issueToken"]
    other = AccessService(served.services.store)  # a second service instance on the same store
    for _ in range(2):  # checked in the store, then remembered
        assert (await other.authenticate(device)).device_id == "dev1"
        assert (await other.authenticate(issued["token"])).user_id == rep_id
    await api.data('mutation{revokeDevice(deviceId:"dev1"){revokedAt}}')
    with pytest.raises(AuthError, match="token revoked"):
        await other.authenticate(device)
    assert (await other.authenticate(issued["token"])).user_id == rep_id
    await api.data(f'mutation{{revokeToken(tokenId:"{issued["info"]["id"]}"){{id}}}}')
    with pytest.raises(AuthError, match="token revoked"):
        await other.authenticate(issued["token"])
    assert (await api.data("query{me{id}}", token=rep))["me"]["id"] == rep_id  # its other tokens still work


async def test_revocation_closes_the_open_websocket_of_that_token(served: Served):
    _, rep = await served.api.user("Ali", "REP")
    device = await served.api.device(rep, "dev1")
    socket = await AsgiWebSocket.open(served.app, {"authorization": f"Bearer {device}"})
    try:
        assert (await socket.receive())["type"] == "connection_ack"
        await socket.send({"id": "1", "type": "subscribe", "payload": {"query": "subscription{refusalEvents{type}}"}})
        await asyncio.sleep(0)  # let the subscription register with the hub
        for _ in range(100):
            if served.services.events.subscriber_count:
                break
            await asyncio.sleep(0.01)
        await served.api.data('mutation{revokeDevice(deviceId:"dev1"){revokedAt}}')
        ended = await socket.receive()
        assert ended["id"] == "1" and ended["type"] in ("next", "error"), ended
        assert "SUBSCRIPTION_CLOSED" in json.dumps(ended)
        # the connection itself cannot be reused: the next subscribe re-checks the token
        await socket.send({"id": "2", "type": "subscribe", "payload": {"query": "subscription{refusalEvents{type}}"}})
        with pytest.raises(Closed) as closed:
            while True:
                await socket.receive()
        assert (closed.value.code, closed.value.reason) == (4403, "Forbidden: token revoked")
    finally:
        await socket.close()


async def test_a_rep_is_kept_to_its_own_rep_within_the_operations_it_may_call(served: Served):
    api = served.api
    ali_id, ali = await api.user("Ali", "REP")
    siti_id, siti = await api.user("Siti", "REP")
    ali_device = await api.device(ali, "dev1")
    await api.device(siti, "dev2")
    await api.write("OUTLET", "o1", {"name": "Kedai Ali"})
    await api.write("VISIT", "v-siti", {"outletId": "o1", "repId": siti_id, "status": "PLANNED"})
    for token in (ali, ali_device):
        for query in (
            f'query{{syncHealth(repId:"{siti_id}"){{generatedAt}}}}',
            f'query{{refusals(filter:{{repId:"{siti_id}"}}){{totalCount}}}}',
            f'query{{syncHistory(filter:{{repId:"{siti_id}"}}){{pageInfo{{hasNextPage}}}}}}',
            f'query{{anomalies(filter:{{repId:"{siti_id}"}}){{totalCount}}}}',
        ):
            assert codes(await api.call(query, token=token)) == {"FORBIDDEN"}, query
        devices = await api.data(f'query{{devices(repId:"{siti_id}"){{id}}}}', token=token)
        assert devices["devices"] == [{"id": "dev1"}]
        assert (await api.data('query{record(recordType:VISIT, recordId:"v-siti"){version}}', token=token)) == {
            "record": None
        }
        assert codes(await api.call('mutation{revokeDevice(deviceId:"dev2"){id}}', token=token)) == {"NOT_FOUND"}
    for query in (
        'query{pull(deviceId:"dev2"){cursor}}',
        'mutation{pushChanges(input:{deviceId:"dev2", changes:[]}){syncId}}',
        'mutation{registerDevice(input:{deviceId:"dev3", name:"x", platform:"ios"}){token}}',
        'mutation{reportDeviceStatus(input:{deviceId:"dev2", queueDepth:0}){id}}',
    ):
        assert codes(await api.call(query, token=ali_device)) == {"FORBIDDEN"}, query
    _, manager = await api.user("Mia", "MANAGER")
    assert codes(await api.call('mutation{issueToken(userId:"admin"){token}}', token=manager)) == {"FORBIDDEN"}
    for subscription in (
        f'subscription{{refusalEvents(repId:"{siti_id}"){{type}}}}',
        f'subscription{{syncStatus(repId:"{siti_id}"){{status}}}}',
        f'subscription{{anomalyEvents(repId:"{siti_id}"){{type}}}}',
    ):
        message = await subscribe(served.app, ali_device, subscription)
        assert "FORBIDDEN" in json.dumps(message), message
    assert ali_id != siti_id


async def test_subscriptions_are_refused_over_http(served: Served):
    response = await served.api.http.post(
        "/graphql", json={"query": "subscription{refusalEvents{type}}"}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert response.status_code == 400
    assert "subscribe over WebSocket" in response.json()["errors"][0]["message"]


async def test_the_history_export_is_for_admin_and_integrator_tokens_only(served: Served):
    who = await callers(served.api)
    allowed = {Caller.ADMIN, Caller.INTEGRATOR}
    for caller, token in who.tokens.items():
        response = await served.api.http.get("/export/history.ndjson", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == (200 if caller in allowed else 403), (caller, response.text)
    for headers in ({}, {"Authorization": "Bearer fs_unknown"}):
        assert (await served.api.http.get("/export/history.ndjson", headers=headers)).status_code == 401
