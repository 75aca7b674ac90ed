"""GET /healthz: 200 once the server accepts data."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from tokentrace.server.responses import JSON
from tokentrace.server.state import ServerState


async def healthz(request: Request) -> JSON:
    state: ServerState = request.app.state.tt
    writer = state.pipeline.writer
    body = {
        "status": "ok",
        "pending_spans": writer.pending_rows,
        "store_error": writer.last_error,
    }
    return JSON(body)


routes = [Route("/healthz", healthz)]
