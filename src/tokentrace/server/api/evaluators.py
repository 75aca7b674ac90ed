"""Evaluators: GET /api/v1/evaluators (the file's and the project's own, with how many of the
project's calls or sessions each has graded, has due, skipped or failed, the latest failures'
reasons, what its judge's calls cost, and the project the judges' calls are traced in);
POST /api/v1/evaluators (add or replace one of the project's) and DELETE
/api/v1/evaluators/{name}. One added here grades the project's calls from the job's next run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.evals.config import EvaluatorsError, parse_spec
from tokentrace.evals.judge_trace import JUDGE_PROJECT
from tokentrace.query.evaluators import evaluator_status
from tokentrace.server.responses import JSON, error
from tokentrace.server.routing import json_route, project_route
from tokentrace.server.state import ServerState


@project_route
def evaluators(request: Request, state: ServerState, project: str) -> Response:
    job = state.evaluations
    found = (job.evaluators + job.added(project)) if job is not None else ()
    rows = evaluator_status(state.store, project, found, datetime.now(UTC))
    return JSON({"evaluators": rows, "judge_calls_project": JUDGE_PROJECT})


@json_route(256 * 1024, "one evaluator")
def add_evaluator(state: ServerState, project: str, data: Any) -> Response:
    """Add (or replace) an evaluator of the caller's project: the keys of an [[evaluators]] entry."""
    job = state.evaluations
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object: one evaluator")
    try:
        evaluator = parse_spec(data, job.judge if job is not None else None, project)
    except EvaluatorsError as exc:
        return error(400, str(exc))
    if job is not None and any(e.name == evaluator.name for e in job.evaluators):
        return error(409, f"evaluator {evaluator.name!r} is defined in the evaluators file; change it there")
    state.store.put_evaluator(project, evaluator.name, orjson.dumps(data).decode())
    [row] = evaluator_status(state.store, project, (evaluator,), datetime.now(UTC))
    return JSON(row, status_code=201)


@project_route
def delete_evaluator(request: Request, state: ServerState, project: str) -> Response:
    name = request.path_params["name"]
    if state.store.delete_evaluator(project, name):
        return Response(status_code=204)
    job = state.evaluations
    if job is not None and any(e.name == name for e in job.evaluators):
        return error(409, f"evaluator {name!r} is defined in the evaluators file; remove it there")
    return error(404, f"no evaluator {name!r}")


routes = [
    Route("/api/v1/evaluators", evaluators, methods=["GET"]),
    Route("/api/v1/evaluators", add_evaluator, methods=["POST"]),
    Route("/api/v1/evaluators/{name:path}", delete_evaluator, methods=["DELETE"]),
]
