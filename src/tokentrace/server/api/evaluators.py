"""GET /api/v1/evaluators: the evaluators the server runs (--evaluators), with how many of the
project's calls (or sessions) each has graded, has due, skipped or failed, the latest failures'
reasons, and the project the judges' own calls are traced in."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.evals.judge_trace import JUDGE_PROJECT
from tokentrace.server.responses import JSON
from tokentrace.server.routing import project_route
from tokentrace.server.state import ServerState


@project_route
def evaluators(request: Request, state: ServerState, project: str) -> Response:
    configured = state.evaluations.evaluators if state.evaluations is not None else ()
    counts = state.store.evaluation_states(project) if configured else {}
    trouble = state.store.evaluation_list(project, "failed", 20) if configured else []
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    spent = state.store.evaluation_spend(today) if configured else {}
    rows = [
        {
            "name": e.name,
            "kind": e.kind,
            "version": e.version,
            "scope": e.scope,
            "quiet_minutes": e.quiet_minutes if e.scope == "session" else None,
            "operation": e.operation,
            "where": dict(e.where),
            "sample_rate": e.sample_rate,
            "rate_limit_per_minute": e.rate_limit_per_minute,
            "daily_budget_usd": e.daily_budget_usd,
            "judge_model": e.judge.model if e.judge is not None else None,
            # the judge's calls today, every project's (what its daily budget counts)
            "judge_spend_today_usd": spent.get(e.name, 0.0) if e.judge is not None else None,
            "evaluations": counts.get(e.name, {}),
            "latest_failures": [
                {
                    "trace_id": f["trace_id"],
                    "span_id": f["span_id"],
                    "error": f["error"],
                    "at": f["updated_at"].isoformat(),
                }
                for f in trouble
                if f["evaluator"] == e.name
            ][:5],
        }
        for e in configured
    ]
    return JSON({"evaluators": rows, "judge_calls_project": JUDGE_PROJECT})


routes = [Route("/api/v1/evaluators", evaluators)]
