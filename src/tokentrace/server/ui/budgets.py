"""`/budgets`: tenants' spend against their budgets, once the gateway enforces them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import render, ui_route


@ui_route
def budgets_page(request: Request, state: ServerState, project: str) -> Response:
    # Budgets arrive with the gateway (issue 7); until then the page says there are none.
    return render(request, "budgets.html", {"project": project, "budgets": []})


routes = [Route("/budgets", budgets_page)]
