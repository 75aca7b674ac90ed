"""Alerts: rules (from the file, or added here), their current state, and the notifications sent.

GET/POST /api/v1/alerts/rules, DELETE /api/v1/alerts/rules/{name}, GET /api/v1/alerts,
GET /api/v1/alerts/events, POST /api/v1/alerts/evaluate (check every rule now).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.alerts import status
from tokentrace.alerts.rules import RuleError, check_notifiers, parse_rule, rule_spec
from tokentrace.server.responses import JSON, error
from tokentrace.server.routing import int_param, json_route, project_route
from tokentrace.server.state import ServerState


@project_route
def list_rules(request: Request, state: ServerState, project: str) -> Response:
    found = state.alerts.rules(project)
    return JSON({"rules": [{"source": source, **rule_spec(rule)} for rule, source in found]})


@json_route(1024 * 1024, "one rule")
def add_rule(state: ServerState, project: str, data: Any) -> Response:
    """Add (or replace) a rule of the caller's project; it is checked from the next evaluation."""
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object: one rule")
    try:
        rule = parse_rule({**data, "project": project})
        check_notifiers(rule, state.alerts.notifiers)
    except RuleError as exc:
        return error(400, str(exc))
    if any(source == "file" and r.name == rule.name for r, source in state.alerts.rules(project)):
        return error(409, f"rule {rule.name!r} is defined in the rules file; change it there")
    spec = rule_spec(rule)
    state.store.put_alert_rule(project, rule.name, orjson.dumps(spec).decode())
    return JSON({"source": "api", **spec}, status_code=201)


@project_route
def delete_rule(request: Request, state: ServerState, project: str) -> Response:
    name = request.path_params["name"]
    if state.store.delete_alert_rule(project, name):
        return Response(status_code=204)
    if any(r.name == name for r, _ in state.alerts.rules(project)):
        return error(409, f"rule {name!r} is defined in the rules file; remove it there")
    return error(404, f"no rule {name!r}")


@project_route
def list_alerts(request: Request, state: ServerState, project: str) -> Response:
    return JSON({"alerts": status.states(state.store, project)})


@project_route
def list_events(request: Request, state: ServerState, project: str) -> Response:
    limit = int_param(request, "limit", 100, 1, 1000)
    return JSON({"events": status.events(state.store, project, limit)})


@project_route
def evaluate_now(request: Request, state: ServerState, project: str) -> Response:
    events = [e for e in state.alerts.evaluate() if e["payload"]["project_id"] == project]
    return JSON({"events": [e["payload"] for e in events]})


routes = [
    Route("/api/v1/alerts/rules", list_rules, methods=["GET"]),
    Route("/api/v1/alerts/rules", add_rule, methods=["POST"]),
    Route("/api/v1/alerts/rules/{name:path}", delete_rule, methods=["DELETE"]),
    Route("/api/v1/alerts", list_alerts, methods=["GET"]),
    Route("/api/v1/alerts/events", list_events, methods=["GET"]),
    Route("/api/v1/alerts/evaluate", evaluate_now, methods=["POST"]),
]
