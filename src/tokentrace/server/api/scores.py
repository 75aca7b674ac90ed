"""POST /api/v1/scores (attach scores to traces and spans), GET /api/v1/scores (summaries)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.ingest.pipeline import Overloaded
from tokentrace.query import filters
from tokentrace.query.scores import summary
from tokentrace.server.responses import JSON, error
from tokentrace.server.routing import project_and_json, project_route
from tokentrace.server.state import ServerState


async def post_scores(request: Request) -> Response:
    """One score object or a list; answered once the accepted ones are durable. Invalid
    scores are rejected alone (listed in `errors`); all invalid is a 400."""
    state: ServerState = request.app.state.tt
    found = await project_and_json(request, state.config.max_body_bytes, "a score object or a list of them")
    if isinstance(found, Response):
        return found
    project, payload = found
    pipeline = state.pipeline
    prepared = pipeline.prepare_scores(project, payload)
    if not prepared.accepted:
        return JSON({"error": "no valid score in the request", "errors": prepared.errors}, status_code=400)
    try:
        pipeline.check_capacity()
        await asyncio.wrap_future(pipeline.submit(prepared))
    except Overloaded as exc:
        return error(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
    except OSError as exc:
        return error(503, f"cannot store scores right now: {exc}", headers={"Retry-After": "5"})
    ids = prepared.tables.scores.column("score_id").to_pylist()
    return JSON({"accepted": len(ids), "ids": ids, "rejected": prepared.rejected, "errors": prepared.errors})


@project_route
def get_scores(request: Request, state: ServerState, project: str) -> Response:
    """Score summaries per name (and per group_by tags) over the spans the filters select."""
    params = dict(request.query_params)
    group_by = filters.group_fields(params.get("group_by"))
    name = params.get("score_name") or None
    return JSON({"scores": summary(state.store, filters.span_filter(project, params), group_by, name)})


routes = [
    Route("/api/v1/scores", post_scores, methods=["POST"]),
    Route("/api/v1/scores", get_scores, methods=["GET"]),
]
