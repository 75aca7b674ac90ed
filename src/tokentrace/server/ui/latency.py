"""`/latency`: p50/p95/p99 of duration, time to first token and time per output token, by model
and by input-length bucket, with p95 by model over time."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query import filters
from tokentrace.query.aggregates import latency
from tokentrace.query.overview import timeline
from tokentrace.server.state import ServerState
from tokentrace.server.ui.charts import chart
from tokentrace.server.ui.render import params, render, span_params, ui_route

MEASURES = (
    ("duration_ms", "Latency"),
    ("ttft_ms", "Time to first token"),
    ("tpot_ms", "Time per output token"),
)
CHARTED = 6  # models drawn over time, busiest first


@ui_route
def latency_page(request: Request, state: ServerState, project: str) -> Response:
    f = filters.span_filter(project, span_params(params(request)))
    f, step, times = timeline(f)
    by_model = latency(state.store, f, ("request_model",))
    index = {t: i for i, t in enumerate(times)}
    series: dict[str, list[float | None]] = {}
    charted = {r["request_model"] for r in by_model[:CHARTED]}
    for row in latency(state.store, f, ("request_model",), ("duration_ms",), step):
        if row["request_model"] in charted and row["bucket"] in index:
            label = str(row["request_model"])
            series.setdefault(label, [None] * len(times))[index[row["bucket"]]] = row["duration_ms"]["p95"]
    context = {
        "project": project,
        "measures": MEASURES,
        "by_model": by_model,
        "by_input": latency(state.store, f, ("input_bucket",)),
        "chart": chart("p95 latency by model", times, series, "ms"),
    }
    return render(request, "latency.html", context)


routes = [Route("/latency", latency_page)]
