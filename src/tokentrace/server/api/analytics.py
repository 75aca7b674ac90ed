"""GET /api/v1/rollups, /api/v1/latency, /api/v1/overview, /api/v1/cost_per (session or user),
/api/v1/stats."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query import aggregates, filters
from tokentrace.query.overview import overview
from tokentrace.server.responses import JSON
from tokentrace.server.routing import BadParameter, int_param, project_route
from tokentrace.server.state import ServerState
from tokentrace.timerange import parse_duration


def _params(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _bucket_seconds(params: dict[str, str]) -> int | None:
    bucket = params.get("bucket")
    bucket_seconds = int(parse_duration(bucket).total_seconds()) if bucket else None
    if bucket_seconds is not None and bucket_seconds < 1:
        raise BadParameter("bucket must be at least 1s")
    return bucket_seconds


@project_route
def rollups(request: Request, state: ServerState, project: str) -> Response:
    params = _params(request)
    group_by = filters.group_fields(params.get("group_by"))
    bucket_seconds = _bucket_seconds(params)
    # The distinct counts of traces, sessions and users come from the spans, the rest from
    # rollups: a dashboard that shows none of them asks distinct=false and reads rollups only.
    distinct = params.get("distinct", "true").lower()
    if distinct not in ("true", "false"):
        raise BadParameter("distinct must be true or false")
    rows = aggregates.rollup(
        state.store, filters.span_filter(project, params), group_by, bucket_seconds, distinct == "true"
    )
    return JSON({"group_by": list(group_by), "bucket_seconds": bucket_seconds, "rows": rows})


@project_route
def latency(request: Request, state: ServerState, project: str) -> Response:
    params = _params(request)
    group_by = filters.group_fields(params.get("group_by"))
    bucket_seconds = _bucket_seconds(params)
    f = filters.span_filter(project, params)
    rows = aggregates.latency(state.store, f, group_by, bucket_seconds=bucket_seconds)
    return JSON({"group_by": list(group_by), "bucket_seconds": bucket_seconds, "rows": rows})


@project_route
def get_overview(request: Request, state: ServerState, project: str) -> Response:
    params = _params(request)
    if not params.get("since"):  # absent or empty: the overview's default day
        params["since"] = "24h"
    return JSON(overview(state.store, filters.span_filter(project, params)))


@project_route
def cost_per(request: Request, state: ServerState, project: str) -> Response:
    params = _params(request)
    entity = filters.canonical_field(params.pop("by", "session_id"))
    top = int_param(request, "top", 20, 1, 1000)
    params.pop("top", None)
    return JSON(aggregates.cost_per(state.store, filters.span_filter(project, params), entity, top))


@project_route
def stats(request: Request, state: ServerState, project: str) -> Response:
    return JSON(aggregates.stats(state.store, project, state.pipeline.writer.pending_rows))


routes = [
    Route("/api/v1/rollups", rollups),
    Route("/api/v1/latency", latency),
    Route("/api/v1/overview", get_overview),
    Route("/api/v1/cost_per", cost_per),
    Route("/api/v1/stats", stats),
]
