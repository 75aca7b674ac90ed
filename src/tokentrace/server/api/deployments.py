"""GET /api/v1/deployments: what each self-hosted deployment (the prices file's [[deployments]])
cost over a range, busy and idle, and how busy it was; `detail=true` adds its hours."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query.deployments import deployment_reports
from tokentrace.server.responses import JSON
from tokentrace.server.routing import BadParameter, project_route
from tokentrace.server.state import ServerState
from tokentrace.timerange import parse_range


@project_route
def deployments(request: Request, state: ServerState, project: str) -> Response:
    params = dict(request.query_params)
    now = datetime.now(UTC)
    since, until = parse_range(params.get("since") or "24h", params.get("until"), now)
    detail = params.get("detail", "false").lower()
    if detail not in ("true", "false"):
        raise BadParameter("detail must be true or false")
    reports = deployment_reports(state.store, state.prices.overrides.deployments, since, until or now, now)
    rows = [r.as_json() for r in reports]
    if detail == "false":
        for row in rows:
            del row["detail"]
    return JSON({"since": since.isoformat(), "until": (until or now).isoformat(), "deployments": rows})


routes = [Route("/api/v1/deployments", deployments)]
