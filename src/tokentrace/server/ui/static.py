"""`/static`: the UI's stylesheet and scripts, htmx and uPlot included, served by the server
itself so the UI works with no internet."""

from __future__ import annotations

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from tokentrace.web import STATIC

routes = [Mount("/static", app=StaticFiles(directory=STATIC, check_dir=False), name="static")]
