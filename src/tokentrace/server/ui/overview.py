"""`/`: the range at a glance (headline numbers with their charts), firing alerts, and, loaded
after the page, triage's top movers against the period before."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.alerts import status
from tokentrace.query import filters
from tokentrace.query.overview import overview, timeline
from tokentrace.query.triage import triage
from tokentrace.server.state import ServerState
from tokentrace.server.ui.charts import chart
from tokentrace.server.ui.render import params, render, span_params, ui_route

#: (series, title, unit) of each headline chart, in page order.
HEADLINES = (
    ("cost_usd", "Spend", "$"),
    ("tokens_per_second", "Tokens / s", ""),
    ("requests", "LLM calls", ""),
    ("error_rate", "Error rate", "%"),
    ("p95_latency_ms", "p95 latency", "ms"),
    ("p95_ttft_ms", "p95 time to first token", "ms"),
    ("cache_hit_rate", "Cache hit rate", "%"),
)


@ui_route
def overview_page(request: Request, state: ServerState, project: str) -> Response:
    found = params(request)
    f = filters.span_filter(project, span_params(found))
    data = overview(state.store, f)
    charts = [chart(title, data.time, {title: data.series[name]}, unit) for name, title, unit in HEADLINES]
    context = {
        "project": project,
        "data": data,
        "charts": charts,
        "alerts": [a for a in status.states(state.store, project) if a["status"] != "resolved"],
    }
    return render(request, "overview.html", context)


@ui_route
def movers(request: Request, state: ServerState, project: str) -> Response:
    """The top movers: triage of the range against the same length just before it."""
    f, _, _ = timeline(filters.span_filter(project, span_params(params(request))))
    window = f.until - f.since
    result = triage(state.store, project, window, window, f.until, f.equals)
    return render(request, "_movers.html", {"project": project, "triage": result})


routes = [Route("/", overview_page), Route("/overview/movers", movers)]
