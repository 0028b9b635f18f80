"""Routes of the dashboard."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def routes() -> list[Mount]:
    return [Mount("/dashboard", app=StaticFiles(directory=STATIC, html=True), name="dashboard")]
