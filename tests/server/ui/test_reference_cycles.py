"""A read leaves nothing for the cycle collector: what a page or an API answer was made from is
freed by reference counting the moment it is sent. A reference cycle would keep it (a week of
triage's calls, a trace's tree, a page's rows) until a collection, which the server makes seldom
(tokentrace/cycle_collector.py). Cycles found and broken: a triage slice's totals held its period
through a bound method; a recursive closure held a trace's tree; an exception raised across
anyio's thread boundary held its frames (a streamed export's end too); a macro defined in a page
held the render's context."""

from __future__ import annotations

import gc
from pathlib import Path

import tokentrace
from tests.server.ui.conftest import Site
from tokentrace.web import TEMPLATES

#: (path, the status it answers)
PAGES = [
    ("/?since=1h", 200),
    ("/overview/movers?since=10m", 200),
    ("/cost?since=1d", 200),
    ("/traces?since=1d", 200),
    ("/sessions", 200),
    ("/sessions/s1", 200),
    ("/latency?since=1d", 200),
    ("/quality", 200),
    ("/budgets", 200),
    ("/alerts", 200),
    ("/evaluators", 200),
    ("/cost?since=soon", 400),  # a bad filter: the page's 400
]
API = [
    ("/api/v1/traces?since=1d", 200),
    ("/api/v1/sessions?since=1d", 200),
    ("/api/v1/rollups?since=1d", 200),
    ("/api/v1/latency?since=1d", 200),
    ("/api/v1/cost_per?since=1d&by=user", 200),
    ("/api/v1/overview?since=1d", 200),
    ("/api/v1/triage?since=10m&baseline=1h", 200),
    ("/api/v1/triage?since=soon", 400),
    ("/api/v1/traces/0123456789abcdef0123456789abcdef", 404),
    ("/api/v1/spans/export?since=1d", 200),  # streamed
    ("/api/v1/spans/export?since=1d&format=parquet", 200),
]
#: Where tokentrace's code and templates are (a checkout's own path may say "tokentrace" too).
OURS = (str(Path(tokentrace.__file__).parent), str(TEMPLATES))


def _ours(thing: object) -> str | None:
    """What names a collected object as made by tokentrace or a template (None: the test
    client's, anyio's): a tokentrace, Jinja or Arrow object, or a frame, function or generator
    of their code. (Plain dicts and lists cannot be told apart; numpy arrays are not tracked.)"""
    kind = type(thing)
    if kind.__module__.partition(".")[0] in ("tokentrace", "jinja2", "pyarrow"):
        return f"{kind.__module__}.{kind.__qualname__}"
    code = next(
        (c for c in (getattr(thing, a, None) for a in ("f_code", "__code__", "gi_code", "ag_code")) if c),
        None,
    )
    if code is not None and code.co_filename.startswith(OURS):
        return f"{kind.__name__} {code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]})"
    return None


def _left_for_the_collector(site: Site, path: str, status: int) -> list[str]:
    """What of ours is in cycles after one request (the path asked once before: templates
    compiled, modules imported, caches filled). Only ours: the test client and background
    threads leave cycles of their own, in varying numbers."""
    site.client.get(path)
    gc.collect()
    gc.freeze()  # what is alive now is not looked at again: each collection below walks little
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds is kept in gc.garbage to look at
    try:
        assert site.client.get(path).status_code == status, path
        gc.collect()
        return sorted(name for name in map(_ours, gc.garbage) if name)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_read_leaves_no_reference_cycle(site: Site) -> None:
    agent = site.agent_trace
    paths = [*PAGES, *API, (f"/traces/{agent}", 200), (f"/api/v1/traces/{agent}", 200)]
    try:
        left = {path: _left_for_the_collector(site, path, status) for path, status in paths}
    finally:
        gc.unfreeze()
        gc.collect()
    assert {path: found for path, found in left.items() if found} == {}
