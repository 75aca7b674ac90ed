"""A read leaves nothing for the cycle collector: what a page or an API answer was made from is
freed by reference counting the moment it is sent. A reference cycle would keep it (a week of
triage's calls, a trace's tree, a page's rows) until a collection, which the server makes seldom
(tokentrace/cycle_collector.py). Cycles found and broken: a triage slice's totals held its period
through a bound method; a recursive closure held a trace's tree; an exception raised across
anyio's thread boundary held its frames; a macro defined in a page held the render's context."""

from __future__ import annotations

import gc

from tests.server.ui.conftest import Site

PAGES = [
    "/?since=1h",
    "/overview/movers?since=10m",
    "/cost?since=1d",
    "/traces?since=1d",
    "/sessions",
    "/sessions/s1",
    "/latency?since=1d",
    "/quality",
    "/budgets",
    "/alerts",
    "/evaluators",
    "/cost?since=soon",  # a bad filter: the page's 400
]
API = [
    "/api/v1/traces?since=1d",
    "/api/v1/sessions?since=1d",
    "/api/v1/rollups?since=1d",
    "/api/v1/latency?since=1d",
    "/api/v1/cost_per?since=1d&by=user",
    "/api/v1/overview?since=1d",
    "/api/v1/triage?since=10m&baseline=1h",
    "/api/v1/triage?since=soon",  # a bad parameter: 400
    "/api/v1/traces/0123456789abcdef0123456789abcdef",  # 404
]


def _ours(thing: object) -> str | None:
    """What names a collected object as made by tokentrace or a template (None: the test
    client's, anyio's): a tokentrace or Jinja object, an array, a function or frame of their code."""
    kind = type(thing)
    if kind.__module__.partition(".")[0] in ("tokentrace", "jinja2", "numpy", "pyarrow"):
        return f"{kind.__module__}.{kind.__qualname__}"
    code = getattr(thing, "f_code", None) or getattr(thing, "__code__", None)
    if code is not None and ("tokentrace" in code.co_filename or code.co_filename.endswith(".html")):
        return f"{kind.__name__} {code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]})"
    return None


def _left_for_the_collector(site: Site, path: str) -> list[str]:
    """What of ours is in cycles after one request (the path asked once before: templates
    compiled, modules imported, caches filled). Only ours: the test client and background
    threads leave cycles of their own, in varying numbers."""
    site.client.get(path)
    gc.collect()
    gc.freeze()  # what is alive now is not looked at again: each collection below walks little
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage to look at
    try:
        status = site.client.get(path).status_code
        assert status in (200, 400, 404), (path, status)
        gc.collect()
        return sorted(name for name in map(_ours, gc.garbage) if name)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_read_leaves_no_reference_cycle(site: Site) -> None:
    paths = [*PAGES, *API, f"/traces/{site.agent_trace}", f"/api/v1/traces/{site.agent_trace}"]
    try:
        left = {path: _left_for_the_collector(site, path) for path in paths}
    finally:
        gc.unfreeze()
        gc.collect()
    assert {path: found for path, found in left.items() if found} == {}
