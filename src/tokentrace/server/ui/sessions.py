"""`/sessions` (sessions by recent activity) and `/sessions/<session_id>` (its traces in order,
with its total cost and tokens, the scores given to it as a whole, and a form for a person's)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query import filters
from tokentrace.query.sessions import list_sessions, session
from tokentrace.server.routing import int_param
from tokentrace.server.state import ServerState
from tokentrace.server.ui.feedback import post_session_feedback
from tokentrace.server.ui.render import params, render, span_params, ui_route

PAGE_SIZE = 50


@ui_route
def sessions_page(request: Request, state: ServerState, project: str) -> Response:
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    f = filters.span_filter(project, span_params(params(request)))
    page = list_sessions(state.store, f, PAGE_SIZE, offset)
    context = {"project": project, "page": page, "offset": offset, "page_size": PAGE_SIZE}
    return render(request, "sessions.html", context)


@ui_route
def session_page(request: Request, state: ServerState, project: str) -> Response:
    found = session(state.store, project, request.path_params["session_id"])
    if found is None:
        return render(request, "error.html", {"project": project, "message": "No such session."}, 404)
    context = {"project": project, "session": found}
    context["feedback_saved"] = request.query_params.get("feedback") == "saved"
    return render(request, "session.html", context)


routes = [
    Route("/sessions", sessions_page),
    # before the page's route: its path parameter would take ".../feedback" too
    Route("/sessions/{session_id:path}/feedback", post_session_feedback, methods=["POST"]),
    Route("/sessions/{session_id:path}", session_page),
]
