"""GET /metrics: the caller's project in the Prometheus text format (a scraper sends its API key
as a bearer token; a loopback server without keys answers for `default`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.server.routing import project_route
from tokentrace.server.state import ServerState

if TYPE_CHECKING:
    from prometheus_client.core import Metric


class _Project:
    """A one-scrape collector: reads the store when the registry collects."""

    def __init__(self, state: ServerState, project: str) -> None:
        self.state, self.project = state, project

    def collect(self) -> Iterator[Metric]:
        from tokentrace.metrics import exposition

        return exposition.families(self.state.store, self.project, self.state.config.metric_labels)


@project_route
def metrics(request: Request, state: ServerState, project: str) -> Response:
    # prometheus_client (~5 MB with what it imports) loads at the first scrape, not with the server
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Project(state, project))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics)]
