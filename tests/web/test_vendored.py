"""The console's and GraphiQL's files: pinned npm copies with licences, every module they load served locally."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx

from service.app import create_app
from service.settings import Settings

WEB = Path(__file__).parents[2] / "service" / "web"
MANIFEST = json.loads((WEB / "vendor.json").read_text())
CONSOLE = (WEB / "static" / "index.html").read_text()


def folder(package: dict) -> Path:
    return WEB / "static" / "vendor" / f"{package['name'].replace('/', '__')}@{package['version']}"


def test_every_vendored_file_is_the_pinned_one_and_every_package_carries_its_licence():
    for package in MANIFEST["packages"]:
        assert package["version"] == re.sub(r"[^0-9.]", "", package["version"]), "exact versions only"
        assert any("LICENSE" in name for name in package["files"]), package["name"]
        for name in package["files"]:
            digest = hashlib.sha256((folder(package) / name).read_bytes()).hexdigest()
            assert digest == package["sha256"][name], f"{package['name']}/{name} differs from `make vendor`"
    on_disk = {path.name for path in (WEB / "static" / "vendor").iterdir()}
    assert on_disk == {folder(package).name for package in MANIFEST["packages"]}, "unlisted vendored packages"


def test_pages_load_scripts_and_styles_only_from_the_service():
    for page in ("index.html", "graphiql.html"):
        html = (WEB / "static" / page).read_text()
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not re.match(r"^(https?:)?//", url), f"{page} loads {url} from elsewhere"


async def test_every_module_the_console_imports_is_served(settings: Settings):
    imports = re.compile(r'^import .*? from "([^"]+)";', re.M | re.S)
    mapped = json.loads(re.search(r'<script type="importmap">(.*?)</script>', CONSOLE, re.S).group(1))["imports"]
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fieldsync.test") as http,
    ):
        home = await http.get("/")
        assert (home.status_code, home.headers["location"]) == (307, "/console/")
        assert (await http.get("/console/")).text == CONSOLE
        for script in (WEB / "static" / "js").glob("*.js"):
            for name in imports.findall(script.read_text()):
                url = "/console/" + (mapped[name].removeprefix("./") if name in mapped else f"js/{name[2:]}")
                assert (await http.get(url)).status_code == 200, f"{script.name} imports {name}: {url}"


async def test_graphiql_is_served_from_the_package(settings: Settings):
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fieldsync.test") as http,
    ):
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        for url in re.findall(r'src="([^"]+)"', page.text):
            assert (await http.get(url)).status_code == 200, url
