"""GET /api/v1/triage: what changed in the window against the baseline just before it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query import filters
from tokentrace.query.triage import triage
from tokentrace.server.responses import JSON
from tokentrace.server.routing import BadParameter, project_route
from tokentrace.server.state import ServerState
from tokentrace.timerange import parse_duration, parse_instant


@project_route
def get_triage(request: Request, state: ServerState, project: str) -> Response:
    params = request.query_params
    window = parse_duration(params.get("since") or "1h")
    baseline = parse_duration(params.get("baseline") or "24h")
    if window.total_seconds() < 60 or baseline.total_seconds() < 60:
        raise BadParameter("since and baseline must each be at least 1m")
    until = parse_instant(params["until"]) if params.get("until") else None
    # Any other parameter is a field to hold (`feature=refund-chat`): the triage of that slice.
    held = {k: v for k, v in params.items() if k not in ("since", "baseline", "until")}
    where = filters.span_filter(project, held).equals
    return JSON(triage(state.store, project, window, baseline, until, where))


routes = [Route("/api/v1/triage", get_triage)]
