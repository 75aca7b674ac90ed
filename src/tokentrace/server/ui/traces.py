"""`/traces` (a filtered, paginated list) and `/traces/<trace_id>`: the span tree as a waterfall
and, for the selected span, its attributes and its messages as a conversation."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tokentrace.canonical import ERROR_TYPES, LLM_OPERATIONS
from tokentrace.evals.judge_trace import JUDGE_PROJECT
from tokentrace.query import filters
from tokentrace.query.evaluators import judge_trace, judge_traces
from tokentrace.query.records import ns_of
from tokentrace.query.traces import SpanNode, TraceTree, list_traces, trace_tree, tree_span, walk
from tokentrace.server.routing import int_param
from tokentrace.server.state import ServerState
from tokentrace.server.ui.feedback import post_feedback
from tokentrace.server.ui.render import params, render, span_params, ui_route

PAGE_SIZE = 50
#: The list's filter inputs: (parameter, label).
TEXT_FILTERS = (
    ("user", "User"),
    ("tenant", "Tenant"),
    ("feature", "Feature"),
    ("model", "Model"),
    ("session", "Session"),
    ("min_cost", "Min cost ($)"),
    ("min_duration", "Min duration (ms)"),
    ("q", "Name contains"),
)


@ui_route
def traces_page(request: Request, state: ServerState, project: str) -> Response:
    found = params(request)
    offset = int_param(request, "offset", 0, 0, 10_000_000)
    wanted = span_params(found)
    if found.get("status") == "error":
        wanted["errors"] = "true"
    f = filters.trace_filter(project, wanted, request.query_params.getlist("score"))
    page = list_traces(state.store, f, limit=PAGE_SIZE, offset=offset)
    context = {
        "project": project,
        "page": page,
        "offset": offset,
        "page_size": PAGE_SIZE,
        "text_filters": TEXT_FILTERS,
        "error_types": ERROR_TYPES,
    }
    return render(request, "traces.html", context)


def _kind(span: SpanNode) -> str:
    """The waterfall colour of a span: what it does."""
    operation = span.get("operation")
    if operation in LLM_OPERATIONS:
        return "llm"
    if operation == "execute_tool":
        return "tool"
    if operation == "retrieval":
        return "retrieval"
    if operation in ("invoke_agent", "create_agent"):
        return "agent"
    return "other"


def waterfall(tree: TraceTree) -> tuple[list[dict[str, Any]], float]:
    """The tree's spans depth-first, children by start time, each with its depth and its bar's
    offset and width as percentages of the trace's duration; and that duration in ms."""
    for node in walk(tree.roots):
        node["start_ns"], node["end_ns"] = ns_of(node["start_time"]), ns_of(node["end_time"])
    start = min(n["start_ns"] for n in walk(tree.roots))
    end = max(n["end_ns"] for n in walk(tree.roots))
    total = max(end - start, 1)
    rows: list[dict[str, Any]] = []
    for root in sorted(tree.roots, key=_started):
        _add_bars(root, 0, start, total, rows)
    return rows, (end - start) / 1e6


def _started(node: SpanNode) -> int:
    return node["start_ns"]


def _add_bars(node: SpanNode, depth: int, start: int, total: int, rows: list[dict[str, Any]]) -> None:
    """The node's row and its subtree's, children by start time (a module function: a closure
    calling itself would be a reference cycle holding the rows)."""
    rows.append(
        {
            "span": node,
            "depth": depth,
            "kind": _kind(node),
            "left": 100 * (node["start_ns"] - start) / total,
            "width": max(100 * (node["end_ns"] - node["start_ns"]) / total, 0.3),
        }
    )
    for child in sorted(node["children"], key=_started):
        _add_bars(child, depth + 1, start, total, rows)


def _tree_context(
    request: Request, state: ServerState, project: str, tree: TraceTree, held_by: str
) -> dict[str, Any]:
    """What trace.html shows of a tree (its spans read from project `held_by`): the waterfall
    and the selected span (by default the first)."""
    rows, duration_ms = waterfall(tree)
    selected = request.query_params.get("span") or rows[0]["span"]["span_id"]
    detail = tree_span(state.store, held_by, tree, selected)
    return {"project": project, "tree": tree, "rows": rows, "duration_ms": duration_ms, "detail": detail}


@ui_route
def trace_page(request: Request, state: ServerState, project: str) -> Response:
    tree = trace_tree(state.store, project, request.path_params["trace_id"])
    if tree is None:
        return render(request, "error.html", {"project": project, "message": "No such trace."}, 404)
    context = _tree_context(request, state, project, tree, project)
    context["feedback_saved"] = request.query_params.get("feedback") == "saved"
    context["judged_by"] = judge_traces(state.store, project, tree.scores)
    return render(request, "trace.html", context)


@ui_route
def judge_page(request: Request, state: ServerState, project: str) -> Response:
    """The trace of a judge's calls on one of this project's calls or sessions (its prompt, its
    reply, its tokens and cost), opened from the verdict's score."""
    tree = judge_trace(state.store, project, request.path_params["trace_id"])
    if tree is None:
        return render(request, "error.html", {"project": project, "message": "No such judge call."}, 404)
    context = _tree_context(request, state, project, tree, JUDGE_PROJECT)
    return render(request, "trace.html", {**context, "judge_view": True})


@ui_route
def span_panel(request: Request, state: ServerState, project: str) -> Response:
    """The selected span's panel alone, for htmx; a browser without it gets the whole trace."""
    trace_id, span_id = request.path_params["trace_id"], request.path_params["span_id"]
    if "hx-request" not in request.headers:
        return RedirectResponse(f"/traces/{trace_id}?span={span_id}", status_code=303)
    tree = trace_tree(state.store, project, trace_id)
    detail = tree_span(state.store, project, tree, span_id) if tree else None
    if detail is None:
        return render(request, "error.html", {"project": project, "message": "No such span."}, 404)
    return render(request, "_span.html", {"project": project, "tree": tree, "detail": detail})


routes = [
    Route("/traces", traces_page),
    Route("/traces/{trace_id}", trace_page),
    Route("/traces/{trace_id}/feedback", post_feedback, methods=["POST"]),
    Route("/traces/{trace_id}/spans/{span_id}", span_panel),
    Route("/judge-calls/{trace_id}", judge_page),
]
