"""People sign in with a name and password; the session cookie works only with its CSRF token."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import Api

ME = {"query": "{me{name role}}"}


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(dataclasses.replace(settings, login_burst=3, login_attempts_per_minute=1))
    async with app.router.lifespan_context(app):
        yield app


def browser(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fieldsync.test")


async def manager(app: Starlette, name: str = "Mia", password: str = "mia-password-1") -> str:
    async with browser(app) as http:
        body = await Api(http).data(
            "mutation($i: CreateUserInput!){createUser(input:$i){user{id}}}",
            {"i": {"name": name, "role": "MANAGER", "password": password}},
        )
    return body["createUser"]["user"]["id"]


async def test_a_manager_signs_in_and_the_cookie_is_httponly_samesite_and_needs_its_csrf_token(app: Starlette):
    await manager(app)
    async with browser(app) as http:
        signed_in = await http.post("/auth/login", json={"name": "mia", "password": "mia-password-1"})
        assert signed_in.status_code == 200
        cookie = signed_in.headers["set-cookie"]
        assert {"httponly", "samesite=strict", "path=/"} <= {part.strip().lower() for part in cookie.split(";")}
        secret = http.cookies["fieldsync_session"]
        csrf = signed_in.json()["csrfToken"]
        assert signed_in.json()["user"]["name"] == "Mia"

        answer = (await http.post("/graphql", json=ME, headers={"X-CSRF-Token": csrf})).json()
        assert answer == {"data": {"me": {"name": "Mia", "role": "MANAGER"}}}
        for headers in ({}, {"X-CSRF-Token": csrf[:-1] + "x"}):  # a cross-site form can send the cookie, not this
            forged = (await http.post("/graphql", json=ME, headers=headers)).json()
            assert forged["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await http.get("/auth/session")).json()["csrfToken"] == csrf  # a reloaded page finds its session

        assert (await http.post("/auth/logout")).status_code == 401  # signing out is a write: CSRF too
        assert (await http.post("/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 200
        assert (await http.get("/auth/session")).status_code == 401
    async with browser(app) as http:  # the old cookie, replayed, is dead
        http.cookies.set("fieldsync_session", secret)
        gone = (await http.post("/graphql", json=ME, headers={"X-CSRF-Token": csrf})).json()
        assert gone["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_wrong_passwords_are_refused_alike_and_attempts_are_rate_limited(app: Starlette):
    await manager(app)
    async with browser(app) as http:
        wrong_password = await http.post("/auth/login", json={"name": "Mia", "password": "nope-nope-nope"})
        wrong_name = await http.post("/auth/login", json={"name": "Mya", "password": "mia-password-1"})
        assert wrong_password.status_code == wrong_name.status_code == 401
        assert wrong_password.json() == wrong_name.json() == {"error": "wrong name or password"}
        third = await http.post("/auth/login", json={"name": "Mia", "password": "mia-password-1"})
        assert third.status_code == 200  # a burst of 3 per client address
        limited = await http.post("/auth/login", json={"name": "Mia", "password": "mia-password-1"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "set-cookie" not in limited.headers


async def test_reps_and_integrators_sign_in_with_tokens_not_passwords(app: Starlette):
    async with browser(app) as http:
        body = await Api(http).call(
            'mutation{createUser(input:{name:"Ali", role:REP, password:"ali-password-1"}){user{id}}}'
        )
        assert body["errors"][0]["message"] == "a REP signs in with a token, not a password"
        short = await Api(http).call('mutation{createUser(input:{name:"Mo", role:MANAGER, password:"short"}){token}}')
        assert "at least 10 characters" in short["errors"][0]["message"]


async def test_changing_the_password_keeps_this_session_and_ends_the_others(app: Starlette):
    await manager(app)
    async with browser(app) as here, browser(app) as elsewhere:
        csrf = {}
        for http in (here, elsewhere):
            signed_in = await http.post("/auth/login", json={"name": "Mia", "password": "mia-password-1"})
            csrf[id(http)] = signed_in.json()["csrfToken"]
        change = "mutation($i: ChangePasswordInput!){changePassword(input:$i){name}}"
        wrong = await here.post(
            "/graphql",
            json={"query": change, "variables": {"i": {"currentPassword": "guess-guess-1", "newPassword": "x" * 12}}},
            headers={"X-CSRF-Token": csrf[id(here)]},
        )
        assert wrong.json()["errors"][0]["message"] == "the current password is wrong"
        changed = await here.post(
            "/graphql",
            json={"query": change, "variables": {"i": {"currentPassword": "mia-password-1", "newPassword": "x" * 12}}},
            headers={"X-CSRF-Token": csrf[id(here)]},
        )
        assert changed.json() == {"data": {"changePassword": {"name": "Mia"}}}
        assert (await here.post("/graphql", json=ME, headers={"X-CSRF-Token": csrf[id(here)]})).json()["data"]
        other = await elsewhere.post("/graphql", json=ME, headers={"X-CSRF-Token": csrf[id(elsewhere)]})
        assert other.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await here.post("/auth/login", json={"name": "Mia", "password": "x" * 12})).status_code == 200


async def test_the_console_export_link_works_for_a_signed_in_admin_and_only_for_a_download(app: Starlette):
    services = app.state.fieldsync["services"]
    admin = await services.access.ensure_admin("admin-secret-token")
    await services.sign_in.set_password(admin, "admin-password-1")
    await manager(app)
    async with browser(app) as http:
        await http.post("/auth/login", json={"name": admin.name, "password": "admin-password-1"})
        export = await http.get("/export/history.ndjson")  # a plain link: the cookie, no CSRF header
        assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
        write = await http.post("/graphql", json={"query": 'mutation{dismissRefusal(id:"x"){id}}'})
        assert write.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # writes still need it
    async with browser(app) as http:
        await http.post("/auth/login", json={"name": "Mia", "password": "mia-password-1"})
        assert (await http.get("/export/history.ndjson")).status_code == 403  # MANAGER: not an exporter
