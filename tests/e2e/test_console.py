"""The console in a real headless Chromium (Debian's, driven by Playwright): seed 000 end to end.

A manager signs in, reads a rep's refusal, fixes the outlet's coordinates in the form; the
rep's phone syncs again and the row turns RESOLVED live, the rep HEALTHY. A new refusal
arrives highlighted, once, and is dismissed with a note. The sync report opens a DST day;
GraphiQL renders and runs a query with the outside network blocked. Each page is
photographed: into docs/screenshots/ (the README shows them) with ``make screenshots``,
else into the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN, FIXED_DATES, Server
from tests.factories import pushed_visit

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
PUSH = "mutation($i: PushInput!){ pushChanges(input:$i){ results{ offlineId status refusal{ code } } } }"
PASSWORD = "mia-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One service for the module, with a manager who signs in and two reps with phones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
    env |= {"FIELDSYNC_ADMIN_TOKEN": ADMIN, "PYTHONPATH": str(Path(__file__).parents[2]), **FIXED_DATES}
    started = Server(["--memory"], env).start()
    started.data(f'mutation{{createUser(input:{{name:"Mia", role:MANAGER, password:"{PASSWORD}"}}){{user{{id}}}}}}')
    yield started
    started.stop()


def phone(server: Server, rep: str, device_id: str, device_name: str) -> tuple[str, str]:
    """A rep and its registered phone: (rep id, device token)."""
    created = server.data(f'mutation{{createUser(input:{{name:"{rep}", role:REP}}){{user{{id}} token}}}}')
    device = server.data(
        "mutation($i: RegisterDeviceInput!){registerDevice(input:$i){token}}",
        {"i": {"deviceId": device_id, "name": device_name, "platform": "android", "appVersion": "3.2.1"}},
        token=created["createUser"]["token"],
    )
    return created["createUser"]["user"]["id"], device["registerDevice"]["token"]


def write(server: Server, record_type: str, record_id: str, fields: dict[str, Any], base: int | None = None) -> None:
    server.data(
        "mutation($i: WriteRecordInput!){writeRecord(input:$i){status}}",
        {"i": {"recordType": record_type, "recordId": record_id, "fields": fields, "baseVersion": base}},
    )


async def push(server: Server, token: str, device_id: str, changes: list[dict[str, Any]]) -> list[str]:
    data = await asyncio.to_thread(server.data, PUSH, {"i": {"deviceId": device_id, "changes": changes}}, token)
    return [result["status"] for result in data["pushChanges"]["results"]]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        await launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return Path(os.environ.get("FIELDSYNC_SCREENSHOTS") or tmp_path)


@pytest.fixture
async def page(browser: Any, server: Server) -> AsyncIterator[Any]:
    """A fresh browser context whose requests may reach only the service: nothing from the internet."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    outside: list[str] = []

    async def only_the_service(route: Any) -> None:
        if route.request.url.startswith(server.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", only_the_service)
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    await context.close()
    assert not outside, f"the page reached outside the service: {outside}"
    assert not errors, errors


async def sign_in(page: Any, server: Server) -> None:
    await page.goto(f"{server.url}/")  # "/" leads to the console
    await page.fill("input[name=name]", "mia")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("#live.live")


async def shot(page: Any, shots: Path, name: str) -> None:
    shots.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


async def test_a_manager_fixes_the_outlet_and_the_refusal_clears_live(page: Any, server: Server, shots: Path):
    ali_id, ali = phone(server, "Ali", "dev-ali", "Ali's Galaxy A14")
    write(server, "OUTLET", "kedai-ali", {"name": "Kedai Ali", "repIds": [ali_id]})
    check_in = pushed_visit(
        "c1", "v1", "kedai-ali", status="CHECKED_IN", checkInLatitude=3.0731, checkInLongitude=101.5183
    )
    assert await push(server, ali, "dev-ali", [check_in, pushed_visit("c2", "v2", "kedai-ali")]) == [
        "REFUSED",
        "BLOCKED",
    ]

    await sign_in(page, server)
    rep = page.locator("article.rep", has_text="Ali")
    await rep.locator(".badge", has_text="Needs attention").first.wait_for()
    row = rep.locator("tr.refusal").first
    assert "Kedai Ali" in await row.inner_text() and "has no coordinates" in await row.inner_text()
    assert "Ali's Galaxy A14 (android)" in await row.inner_text()  # names, not ids
    health_calls: list[str] = []
    page.on("request", lambda r: r.post_data and "syncHealth" in r.post_data and health_calls.append(r.url))

    await row.click()
    sent = await page.locator("details.sent").inner_text()  # what the phone sent, as the rep entered it
    assert "Check in latitude" in sent and "3.0731" in sent and "Kedai Ali" in sent
    form = page.locator("form.record-form")
    await form.locator("input[name=latitude]").fill("3.0731")
    await form.locator("input[name=longitude]").fill("101.5183")
    await shot(page, shots, "sync-health")
    await form.locator("button[type=submit]").click()
    await rep.locator(".badge.WAITING", has_text="waiting for Ali's next sync").wait_for()
    outlet = server.data('query{record(recordType:OUTLET, recordId:"kedai-ali"){fields}}')["record"]["fields"]
    assert (outlet["latitude"], outlet["longitude"]) == (3.0731, 101.5183)

    health_calls.clear()
    assert await push(server, ali, "dev-ali", [check_in, pushed_visit("c2", "v2", "kedai-ali")]) == [
        "APPLIED",
        "APPLIED",
    ]
    await rep.locator("tr.cleared .badge.RESOLVED").wait_for()  # live: no reload
    await rep.locator("h3 .badge", has_text="Healthy").wait_for()
    await asyncio.sleep(0.5)
    assert len(health_calls) == 1, health_calls  # the refusal and the status events: one refresh

    # Another rep's phone sends a visit for an outlet that does not exist: it appears, highlighted once.
    _, siti = phone(server, "Siti", "dev-siti", "Siti's Redmi 12")
    assert await push(server, siti, "dev-siti", [pushed_visit("s1", "v-siti", "no-such-outlet")]) == ["REFUSED"]
    arrived = page.locator("article.rep", has_text="Siti").locator("tr.refusal.flash")
    await arrived.wait_for()
    await page.locator("tr.refusal.flash").wait_for(state="detached", timeout=10_000)  # the highlight goes
    await page.locator("article.rep", has_text="Siti").locator("tr.refusal").click()
    await page.fill("form.dismiss textarea", "Siti visited a shop we do not serve; ignore")
    await page.click("form.dismiss button")
    await page.locator("article.rep", has_text="Siti").locator(".badge.DISMISSED").wait_for()
    events = server.data("query{syncHistory(filter:{actions:[REFUSAL_DISMISSED]}){edges{node{detail}}}}")
    assert "we do not serve" in str(events["syncHistory"]["edges"][0]["node"]["detail"])


async def test_assigning_the_outlet_to_the_rep_clears_an_outlet_not_assigned_refusal(page: Any, server: Server):
    _, dewi = phone(server, "Dewi", "dev-dewi", "Dewi's Pixel 7")
    write(server, "OUTLET", "toko-baru", {"name": "Toko Baru"})  # assigned to nobody yet
    planned = pushed_visit("d1", "v-dewi", "toko-baru")
    assert await push(server, dewi, "dev-dewi", [planned]) == ["REFUSED"]

    await sign_in(page, server)
    rep = page.locator("article.rep", has_text="Dewi")
    await rep.locator("tr.refusal", has_text="Outlet not assigned").click()
    await page.click("text=Assign this outlet to Dewi")
    await rep.locator(".badge.WAITING").wait_for()
    outlet = server.data('query{record(recordType:OUTLET, recordId:"toko-baru"){fields}}')["record"]["fields"]
    assert len(outlet["repIds"]) == 1
    assert await push(server, dewi, "dev-dewi", [planned]) == ["APPLIED"]
    await rep.locator("tr.cleared .badge.RESOLVED").wait_for()


async def test_devices_conflicts_history_and_a_dst_day_in_the_sync_report(page: Any, server: Server, shots: Path):
    nur_id, nur = phone(server, "Nur", "dev-nur", "Nur's iPhone SE")
    write(server, "OUTLET", "o-nur", {"name": "Toko Nur", "repIds": [nur_id]})
    assert await push(server, nur, "dev-nur", [pushed_visit("n1", "v-nur", "o-nur", notes="first")]) == ["APPLIED"]
    office = {"outletId": "o-nur", "repId": nur_id, "status": "CANCELLED", "notes": "office"}
    write(server, "VISIT", "v-nur", office, base=1)  # seed 002: someone in the office edits it meanwhile
    stale = {**pushed_visit("n2", "v-nur", "o-nur", notes="second"), "baseVersion": 1}
    assert await push(server, nur, "dev-nur", [stale]) == ["CONFLICT"]

    await sign_in(page, server)
    await page.click("nav >> text=Devices")
    await page.locator("tr[data-device=dev-nur]").wait_for()
    assert "Nur" in await page.locator("tr[data-device=dev-nur]").inner_text()
    await shot(page, shots, "devices")

    await page.click("nav >> text=Conflicts")
    conflict = page.locator("article.conflict", has_text="Nur")
    await conflict.wait_for()
    assert await conflict.locator("tr.changed", has_text="Notes").count() == 1
    await shot(page, shots, "conflicts")

    await page.click("nav >> text=Sync report")
    await page.select_option("label.zone select", "Europe/Berlin")
    await page.fill("input[name=day]", "2026-10-25")  # clocks go back: a 25-hour day
    await page.click("nav.days button")
    await page.locator("section.day", has_text="25 hours").wait_for()
    today = await page.locator("nav.days a").first.get_attribute("href")
    assert today is not None
    await page.locator("nav.days a").first.click()
    details = page.locator("section.day table.history")
    await details.wait_for()
    assert "Visit v-nur" in await details.inner_text()
    await shot(page, shots, "sync-report")

    await details.locator("a", has_text="Visit v-nur").first.click()  # the record's history
    history = page.locator("div.history-page table.history")  # not the report's table, still there a moment
    await history.locator("tbody tr", has_text="Conflict").first.wait_for()  # the record's events have loaded
    rows = await history.locator("tbody tr").all_inner_texts()
    assert rows and all("v-nur" in row for row in rows)
    assert any("Conflict" in row for row in rows)
    await shot(page, shots, "history")


async def test_graphiql_renders_and_runs_a_query_with_the_internet_blocked(page: Any, server: Server, shots: Path):
    await sign_in(page, server)
    await page.goto(f"{server.url}/graphql")
    await page.locator(".graphiql-container").wait_for()
    await page.click(".graphiql-execute-button")
    result = page.locator(".result-window")
    await result.locator("text=MANAGER").wait_for()
    assert '"name": "Mia"' in await result.inner_text()
    await shot(page, shots, "graphiql")
