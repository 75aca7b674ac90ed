"""GET /api/v1/evaluators: the evaluators the server runs (--evaluators), with how many of the
project's calls (or sessions) each has graded, has due, skipped or failed, the latest failures'
reasons, what its judge's calls cost, and the project the judges' own calls are traced in."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.evals.judge_trace import JUDGE_PROJECT
from tokentrace.query.evaluators import evaluator_status
from tokentrace.server.responses import JSON
from tokentrace.server.routing import project_route
from tokentrace.server.state import ServerState


@project_route
def evaluators(request: Request, state: ServerState, project: str) -> Response:
    configured = state.evaluations.evaluators if state.evaluations is not None else ()
    rows = evaluator_status(state.store, project, configured, datetime.now(UTC))
    return JSON({"evaluators": rows, "judge_calls_project": JUDGE_PROJECT})


routes = [Route("/api/v1/evaluators", evaluators)]
