"""The ASGI application: routes from each resource module over one ServerState."""

from __future__ import annotations

from starlette.applications import Starlette

from tokentrace.server import health, metrics, otlp
from tokentrace.server.api import alerts, analytics, export, projects, scores, traces, triage
from tokentrace.server.state import ServerState


def create_app(state: ServerState) -> Starlette:
    app = Starlette(
        routes=[
            *health.routes,
            *metrics.routes,
            *otlp.routes,
            *traces.routes,
            *analytics.routes,
            *triage.routes,
            *alerts.routes,
            *export.routes,
            *projects.routes,
            *scores.routes,
        ]
    )
    app.state.tt = state
    return app
