"""GET /api/v1/traces, /api/v1/traces/{trace_id}, /api/v1/traces/{trace_id}/spans/{span_id},
/api/v1/sessions and /api/v1/sessions/{session_id}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query import filters
from tokentrace.query.sessions import list_sessions, session
from tokentrace.query.traces import list_traces, span_detail, trace_tree
from tokentrace.server.responses import JSON, error
from tokentrace.server.routing import int_param, project_route
from tokentrace.server.state import ServerState


@project_route
def traces(request: Request, state: ServerState, project: str) -> Response:
    params = dict(request.query_params)
    f = filters.trace_filter(project, params, request.query_params.getlist("score"))
    page = list_traces(
        state.store,
        f,
        limit=int_param(request, "limit", 50, 1, 1000),
        offset=int_param(request, "offset", 0, 0, 10_000_000),
    )
    return JSON(page)


@project_route
def trace(request: Request, state: ServerState, project: str) -> Response:
    tree = trace_tree(state.store, project, request.path_params["trace_id"])
    if tree is None:
        return error(404, "no such trace in this project")
    return JSON(tree)


@project_route
def span(request: Request, state: ServerState, project: str) -> Response:
    found = span_detail(state.store, project, request.path_params["trace_id"], request.path_params["span_id"])
    if found is None:
        return error(404, "no such span in this project")
    return JSON(found)


@project_route
def sessions(request: Request, state: ServerState, project: str) -> Response:
    f = filters.span_filter(project, dict(request.query_params))
    limit = int_param(request, "limit", 50, 1, 1000)
    return JSON(list_sessions(state.store, f, limit, int_param(request, "offset", 0, 0, 10_000_000)))


@project_route
def one_session(request: Request, state: ServerState, project: str) -> Response:
    found = session(state.store, project, request.path_params["session_id"])
    if found is None:
        return error(404, "no such session in this project")
    return JSON(found)


routes = [
    Route("/api/v1/traces", traces),
    Route("/api/v1/traces/{trace_id}", trace),
    Route("/api/v1/traces/{trace_id}/spans/{span_id}", span),
    Route("/api/v1/sessions", sessions),
    Route("/api/v1/sessions/{session_id:path}", one_session),
]
