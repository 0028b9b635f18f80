"""The app in process, driven over ASGI with its lifespan running."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.settings import Settings

ADMIN = "admin-secret-token"


@dataclass
class Api:
    http: httpx.AsyncClient

    async def call(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = ADMIN
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return response.json()

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = ADMIN
    ) -> dict[str, Any]:
        body = await self.call(query, variables, token)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def user(self, name: str, role: str) -> tuple[str, str]:
        data = await self.data(
            "mutation($i: CreateUserInput!){createUser(input:$i){user{id} token}}", {"i": {"name": name, "role": role}}
        )
        return data["createUser"]["user"]["id"], data["createUser"]["token"]

    async def device(self, rep_token: str, device_id: str) -> str:
        data = await self.data(
            "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
            {"i": {"deviceId": device_id, "name": "Phone", "platform": "android", "appVersion": "1.0"}},
            rep_token,
        )
        return data["registerDevice"]["token"]

    async def write(
        self, record_type: str, record_id: str, fields: dict[str, Any], base: int | None = None, token: str = ADMIN
    ):
        data = await self.data(
            "mutation($i: WriteRecordInput!){writeRecord(input:$i){status record{version fields}"
            " conflict{serverVersion} refusal{code}}}",
            {"i": {"recordType": record_type, "recordId": record_id, "fields": fields, "baseVersion": base}},
            token,
        )
        return data["writeRecord"]

    async def push(self, device_token: str, device_id: str, changes: list[dict[str, Any]], **extra: Any):
        data = await self.data(PUSH, {"i": {"deviceId": device_id, "changes": changes, **extra}}, device_token)
        return data["pushChanges"]["results"]


PUSH = """mutation($i: PushInput!){ pushChanges(input:$i){ syncId serverTime results{
  offlineId status blockedBy duplicateOf
  record{ recordType recordId version deleted fields crdtState }
  conflict{ id status baseVersion serverVersion changedFields deviceFields serverFields }
  refusal{ id code reason field action status attempts related{recordType recordId} } } } }"""


def through_both_paths():  # type: ignore[no-untyped-def]
    """A ``settings`` fixture for a module: each of its tests runs with prepared operations and without."""

    @pytest.fixture(params=[True, False], ids=["prepared", "general"])
    def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
        return dataclasses.replace(settings, prepared_operations=request.param)

    return settings


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    if settings.prepared_operations:  # PUSH is valid: prepared before its first request, not after
        app.state.fieldsync["prepared"].learn(PUSH)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fieldsync.test") as http:
            yield Api(http)
