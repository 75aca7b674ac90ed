"""`/quality`: each numeric score (evaluators', people's, the SDK's) over time, by prompt version
and by model, with its lowest-scored calls one click from their traces."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query import filters
from tokentrace.query.quality import quality
from tokentrace.server.state import ServerState
from tokentrace.server.ui.charts import chart
from tokentrace.server.ui.render import params, render, span_params, ui_route


@ui_route
def quality_page(request: Request, state: ServerState, project: str) -> Response:
    f = filters.span_filter(project, span_params(params(request)))
    found = quality(state.store, f)
    series = {s.name: s.over_time for s in found.scores}
    context = {
        "project": project,
        "quality": found,
        "chart": chart("Mean score over time", found.times, series),
    }
    return render(request, "quality.html", context)


routes = [Route("/quality", quality_page)]
