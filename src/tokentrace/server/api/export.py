"""GET /api/v1/spans/export?format=jsonl|parquet[&since=&until=]: canonical spans, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator

from starlette.concurrency import run_in_threadpool
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
        _chunks(writer(state.store, f)),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="spans.{fmt}"'},
    )


_END = object()  # what `next` answers once the writer is done


async def _chunks(written: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """The writer's chunks, each made in the threadpool. Starlette's own wrapper raises the end of
    the iteration across anyio's thread boundary, a reference cycle that held the writer (and,
    for a client gone mid-stream, its store cursor) until the cycle collector ran."""
    try:
        while (chunk := await run_in_threadpool(next, written, _END)) is not _END:
            yield chunk
    finally:
        written.close()  # a client gone mid-stream: the writer's cursor goes now


routes = [Route("/api/v1/spans/export", spans_export)]
