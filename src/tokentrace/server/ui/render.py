"""What every page does: find the project (key cookie, header, or a loopback server's default),
read its filters from the query string, render its template, and say how long that took.

Pages are data about untrusted content (prompts, tags, model names): Jinja escapes everything,
and the Content-Security-Policy runs only the server's own scripts, so stored markup stays text.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tokentrace.canonical import LLM_OPERATIONS
from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.routing import BAD_REQUEST
from tokentrace.server.state import ServerState
from tokentrace.server.ui.formats import FILTERS, GLOBALS
from tokentrace.web import TEMPLATES

if TYPE_CHECKING:
    from jinja2 import Environment

KEY_COOKIE = "tt_key"
DEFAULT_RANGE = "24h"
RANGES = ("15m", "1h", "6h", "24h", "7d", "30d")
#: Query parameters that shape a page (grouping, sorting, selection), not which spans it reads.
VIEW_KEYS = frozenset({"by", "metric", "sort", "dir", "span", "status"})
PAGES = (
    ("/", "Overview"),
    ("/cost", "Cost"),
    ("/traces", "Traces"),
    ("/sessions", "Sessions"),
    ("/latency", "Latency"),
    ("/quality", "Quality"),
    ("/evaluators", "Evaluators"),
    ("/alerts", "Alerts"),
    ("/budgets", "Budgets"),
    ("/reconcile", "Reconcile"),
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@cache
def environment() -> Environment:
    """The templates, made at the first page (jinja2 is ~5 MB of a server nobody browses)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals.update(GLOBALS, pages=PAGES, ranges=RANGES, llm_operations=LLM_OPERATIONS)
    return env


Handler = Callable[[Request, ServerState, str], Response]


def authorization(request: Request) -> str | None:
    """The Authorization header, or the key the login page left in a cookie."""
    if header := request.headers.get("authorization"):
        return header
    key = request.cookies.get(KEY_COOKIE)
    return f"Bearer {key}" if key else None


def params(request: Request) -> dict[str, str]:
    """The page's query string, with the default range when none is given."""
    found = {k: v for k, v in request.query_params.items() if v != ""}
    found.setdefault("since", DEFAULT_RANGE)
    return found


def span_params(found: dict[str, str]) -> dict[str, str]:
    """The query parameters that filter spans (what query/filters reads)."""
    return {k: v for k, v in found.items() if k not in VIEW_KEYS}


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """The template filled with `context` plus what the layout needs (path, project, filters)."""
    base = {"path": request.url.path, "params": params(request)}
    html = environment().get_template(template).render({**base, **context})
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def ui_route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Find the project (or send the browser to /login), run the handler in the threadpool, turn
    bad filters into the page's 400, and report the handler's time in Server-Timing."""

    @wraps(handler)
    async def route(request: Request) -> Response:
        state: ServerState = request.app.state.tt
        try:
            project = project_for(state, authorization(request))
        except Unauthorized:
            target = quote(request.url.path + ("?" + request.url.query if request.url.query else ""))
            return RedirectResponse(f"/login?next={target}", status_code=303)
        started = time.perf_counter()
        response = await run_in_threadpool(_page, handler, request, state, project)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return route


def _page(handler: Handler, request: Request, state: ServerState, project: str) -> Response:
    try:
        return handler(request, state, project)
    except BAD_REQUEST as exc:  # answered in this thread (routing.BAD_REQUEST says why)
        return render(request, "error.html", {"project": project, "message": str(exc)}, 400)
