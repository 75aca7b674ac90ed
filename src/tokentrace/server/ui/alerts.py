"""`/alerts`: the rules (from the rules file or the API), what each says now, and the
notifications sent, with delivery attempts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.alerts import status
from tokentrace.alerts.rules import rule_spec
from tokentrace.server.state import ServerState
from tokentrace.server.ui.render import render, ui_route


@ui_route
def alerts_page(request: Request, state: ServerState, project: str) -> Response:
    rules = [
        {"source": source, "condition": rule.describe(), **rule_spec(rule)}
        for rule, source in state.alerts.rules(project)
    ]
    context = {
        "project": project,
        "rules": rules,
        "alerts": status.states(state.store, project),
        "events": status.events(state.store, project, 100),
        "notifiers": sorted(state.alerts.notifiers),
    }
    return render(request, "alerts.html", context)


routes = [Route("/alerts", alerts_page)]
