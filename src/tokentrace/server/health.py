"""GET /healthz: 200 once the server accepts data; what it holds in memory and what it refused."""

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
        "pending_bytes": writer.pending_bytes,
        "pending_bytes_peak": writer.pending_bytes_peak,
        "inflight_bytes": state.admission.held_bytes,
        "inflight_bytes_peak": state.admission.peak_bytes,
        "refused": dict(state.refused),
        "store_error": writer.last_error,
    }
    return JSON(body)


routes = [Route("/healthz", healthz)]
