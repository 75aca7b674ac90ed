"""`/evaluators`: the evaluators the server runs, what each has graded, has due, skipped or
failed in this project (with the latest failures' reasons), and what its judge's calls cost."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.evals.judge_trace import JUDGE_PROJECT
from tokentrace.query.evaluators import evaluator_status
from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import render, ui_route


@ui_route
def evaluators_page(request: Request, state: ServerState, project: str) -> Response:
    job = state.evaluations
    configured = (job.evaluators + job.added(project)) if job is not None else ()
    context = {
        "project": project,
        "evaluators": evaluator_status(state.store, project, configured, datetime.now(UTC)),
        "judge_project": JUDGE_PROJECT,
    }
    return render(request, "evaluators.html", context)


routes = [Route("/evaluators", evaluators_page)]
