"""The ASGI application: routes from each resource module over one ServerState."""

from __future__ import annotations

from starlette.applications import Starlette

from tokentrace.server import health, metrics, otlp
from tokentrace.server.api import (
    alerts,
    analytics,
    deployments,
    evaluators,
    export,
    openapi,
    projects,
    reconcile,
    sampling,
    scores,
    traces,
    triage,
)
from tokentrace.server.api import budgets as budgets_api
from tokentrace.server.state import ServerState
from tokentrace.server.ui import alerts as alerts_page
from tokentrace.server.ui import budgets, cost, latency, login, overview, quality, sessions, static
from tokentrace.server.ui import evaluators as evaluators_page
from tokentrace.server.ui import reconcile as reconcile_page
from tokentrace.server.ui import traces as traces_pages


def create_app(state: ServerState) -> Starlette:
    app = Starlette(
        routes=[
            *health.routes,
            *metrics.routes,
            *otlp.routes,
            *traces.routes,
            *analytics.routes,
            *deployments.routes,
            *evaluators.routes,
            *triage.routes,
            *alerts.routes,
            *budgets_api.routes,
            *export.routes,
            *projects.routes,
            *scores.routes,
            *sampling.routes,
            *reconcile.routes,
            *openapi.routes,
            *overview.routes,
            *cost.routes,
            *traces_pages.routes,
            *sessions.routes,
            *latency.routes,
            *quality.routes,
            *evaluators_page.routes,
            *alerts_page.routes,
            *budgets.routes,
            *reconcile_page.routes,
            *login.routes,
            *static.routes,
        ]
    )
    app.state.tt = state
    return app
