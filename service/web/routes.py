"""Routes of the console: ``/`` leads to it, ``/console/`` serves its static files."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


async def home(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


def routes() -> list[Route | Mount]:
    return [
        Route("/", home),
        Mount("/console", app=StaticFiles(directory=STATIC, html=True), name="console"),
    ]
