"""CORS by setting: a dashboard on another origin may call the API only when its origin is listed."""

from __future__ import annotations

import dataclasses

import httpx

from service.app import create_app
from service.settings import Settings

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


async def options(settings: Settings, origin: str) -> httpx.Response:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fieldsync.test") as http,
    ):
        return await http.options("/graphql", headers={"Origin": origin, **PREFLIGHT})


async def test_a_listed_origin_passes_the_preflight_and_others_do_not(settings: Settings):
    settings = dataclasses.replace(settings, cors_origins="https://ops.example.com, https://bi.example.com")
    allowed = await options(settings, "https://bi.example.com")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://bi.example.com"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers  # session cookies stay same-origin
    refused = await options(settings, "https://evil.example.net")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


async def test_no_origin_is_allowed_by_default(settings: Settings):
    response = await options(settings, "https://ops.example.com")
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers
