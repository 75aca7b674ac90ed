"""`/budgets`: each budget against the spend the traces show in its current window, with the
calls budgets refused."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query.budgets import budget_usage
from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import render, ui_route


@ui_route
def budgets_page(request: Request, state: ServerState, project: str) -> Response:
    context = {"project": project, "budgets": budget_usage(state.store, project, state.budgets)}
    return render(request, "budgets.html", context)


routes = [Route("/budgets", budgets_page)]
