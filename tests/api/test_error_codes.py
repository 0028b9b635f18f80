"""Every error a client sees carries a code from the documented list, and nothing of the store's own text."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import httpx
from graphql import GraphQLError
from pymongo.errors import BulkWriteError, OperationFailure, ServerSelectionTimeoutError

from service.api.errors import CODES, client_error, markdown
from service.app import create_app
from service.settings import Settings
from service.store import identity
from service.store.unavailable import StoreUnavailable, as_unavailable
from tests.api.conftest import ADMIN, Api


async def post(api: Api, body: bytes | str, token: str | None = ADMIN, method: str = "POST") -> tuple[int, dict]:
    headers = {"content-type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    response = await api.http.request(method, "/graphql", content=body, headers=headers)
    assert response.headers["content-type"] == "application/json", response.text
    return response.status_code, response.json()


def codes(body: dict) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


NO_OFFSET = (
    b'{"query": "query($t: DateTime!){ syncHistory(filter:{since:$t}){ edges{cursor} } }",'
    b' "variables": {"t": "2026-05-01T09:30:00"}}'
)


async def test_malformed_requests_are_bad_request_in_graphql_json(api: Api):
    cases = {
        b"{not json": 400,
        b'"a string"': 400,
        b'{"query": "{ me { id "}': 200,  # syntax
        b'{"query": "{ me { nope } }"}': 200,  # validation
        NO_OFFSET: 200,  # a scalar refusing its input
        b'{"query": "subscription{ refusalEvents{ type } }"}': 400,
    }
    for body, status in cases.items():
        got, answer = await post(api, body)
        assert (got, codes(answer)) == (status, ["BAD_REQUEST"]), (body, answer)
    _, answer = await post(api, NO_OFFSET)
    assert "UTC offset" in answer["errors"][0]["message"]  # the scalar's own words are kept: they are about the input


async def test_tokens_roles_and_methods_have_their_codes(api: Api):
    assert codes((await post(api, b'{"query": "{ me { id } }"}', token="fs_nope"))[1]) == ["UNAUTHENTICATED"]
    assert codes((await post(api, b'{"query": "{ me { id } }"}', token=None))[1]) == ["UNAUTHENTICATED"]
    _, rep = await api.user("Ana", "REP")
    assert codes((await post(api, b'{"query": "{ users { id } }"}', token=rep))[1]) == ["FORBIDDEN"]
    status, answer = await post(api, b"{}", method="PUT")
    assert (status, codes(answer)) == (405, ["METHOD_NOT_ALLOWED"])


async def test_rate_limited_says_when_to_retry(settings: Settings):
    app = create_app(replace(settings, rate_limit_per_minute=1, rate_limit_burst=1))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fieldsync.test") as http:
            headers = {"Authorization": f"Bearer {ADMIN}"}
            first, response = [
                await http.post("/graphql", json={"query": "{ me { id } }"}, headers=headers) for _ in "12"
            ]
    assert (first.status_code, response.status_code) == (200, 429)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": int(response.headers["retry-after"])}


async def test_an_unexpected_failure_is_internal_with_a_reference_in_the_log(api: Api, services, caplog):
    # a user document the service cannot read (written by hand, as a botched migration would)
    await services.store.db[identity.USERS].insert_one({"_id": "broken", "role": "NOT A ROLE"})
    with caplog.at_level(logging.ERROR, logger="fieldsync.errors"):
        status, answer = await post(api, b'{"query": "{ users { id name } }"}')
    assert status == 500 and answer["data"] is None
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["path"] == ["users"]
    reference = error["extensions"]["reference"]
    assert reference in error["message"] and "NOT A ROLE" not in str(answer) and "KeyError" not in str(answer)
    assert any(reference in record.getMessage() and record.exc_info for record in caplog.records)


def test_store_failures_are_recognised_through_their_causes():
    disk = OperationFailure("database or disk is full", code=1)
    assert as_unavailable(disk).reason == "disk full"
    bulk = BulkWriteError({"writeErrors": [{"index": 0, "code": 1, "errmsg": "database or disk is full"}]})
    assert as_unavailable(bulk).reason == "disk full"
    try:
        try:
            raise ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused, Topology: ...")
        except ServerSelectionTimeoutError as error:
            raise RuntimeError("while loading a snapshot") from error
    except RuntimeError as wrapped:
        assert as_unavailable(wrapped).reason == "unreachable"
    assert as_unavailable(OperationFailure("E11000 duplicate key", code=11000)) is None
    assert as_unavailable(KeyError("x")) is None


def test_client_errors_keep_codes_and_mask_the_rest():
    ours = GraphQLError("a rep sees only its own events", extensions={"code": "FORBIDDEN"})
    assert client_error(ours) is ours
    disk = GraphQLError(
        "database or disk is full", path=["pushChanges"], original_error=OperationFailure("database or disk is full")
    )
    masked = client_error(disk)
    assert masked.extensions == {"code": "UNAVAILABLE", "reason": "disk full", "retryAfter": 5}
    assert "database" not in masked.message and masked.path == ["pushChanges"]
    raised = GraphQLError("store restarting", original_error=StoreUnavailable("unreachable", retry_after=12.5))
    assert client_error(raised).extensions == {"code": "UNAVAILABLE", "reason": "unreachable", "retryAfter": 13}
    assert all(c.name == name for name, c in CODES.items())


def test_the_mobile_teams_page_lists_every_code():
    page = (Path(__file__).parents[2] / "docs" / "errors.md").read_text()
    assert markdown() in page, "docs/errors.md is out of date: paste service.api.errors.markdown() into it"
