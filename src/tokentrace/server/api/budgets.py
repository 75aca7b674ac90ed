"""GET /api/v1/budgets: the budgets the server was started with (`serve --budgets`), each with
its traced spend in the current window and the calls budgets refused."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query.budgets import budget_usage
from tokentrace.server.responses import JSON
from tokentrace.server.routing import project_route
from tokentrace.server.state import ServerState


@project_route
def budgets(request: Request, state: ServerState, project: str) -> Response:
    return JSON({"budgets": budget_usage(state.store, project, state.budgets)})


routes = [Route("/api/v1/budgets", budgets)]
