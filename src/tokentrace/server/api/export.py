"""GET /api/v1/spans/export?format=jsonl|parquet[&since=&until=]: canonical spans, streamed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tokentrace.query import export, filters
from tokentrace.server.responses import error
from tokentrace.server.routing import project_route
from tokentrace.server.state import ServerState

_FORMATS = {
    "jsonl": (export.jsonl, "application/x-ndjson"),
    "parquet": (export.parquet, "application/vnd.apache.parquet"),
}


@project_route
def spans_export(request: Request, state: ServerState, project: str) -> Response:
    params = dict(request.query_params)
    fmt = params.get("format", "jsonl")
    if fmt not in _FORMATS:
        return error(400, f"format must be one of: {', '.join(_FORMATS)}")
    writer, media = _FORMATS[fmt]
    f = filters.span_filter(project, params)
    return StreamingResponse(
        writer(state.store, f),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="spans.{fmt}"'},
    )


routes = [Route("/api/v1/spans/export", spans_export)]
