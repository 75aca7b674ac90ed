"""What every API route does first: find the project, turn bad parameters into 400s."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from tokentrace.query.filters import FilterError
from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.body import BodyTooLarge, read_body
from tokentrace.server.responses import JSON, error
from tokentrace.server.state import ServerState
from tokentrace.timerange import TimeRangeError

Handler = Callable[[Request, ServerState, str], Response]
JsonHandler = Callable[[ServerState, str, Any], Response]
Route = Callable[[Request], Awaitable[Response]]


class BadParameter(ValueError):
    """A query parameter with a bad value (answered 400)."""


#: What a handler raises for a request it cannot answer as asked (a 400). Routes catch these in
#: the threadpool's thread: an exception raised across anyio's thread boundary leaves a reference
#: cycle (its traceback, the frames, the future) that only the cycle collector frees.
BAD_REQUEST = (FilterError, TimeRangeError, BadParameter)


def caller(request: Request) -> str | JSON:
    """The project the request's key names, or the 401 answer."""
    try:
        return project_for(request.app.state.tt, request.headers.get("authorization"))
    except Unauthorized as exc:
        return error(401, str(exc))


def project_route(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, then run the (blocking, store-reading) handler in the threadpool."""

    @wraps(handler)
    async def route(request: Request) -> Response:
        project = caller(request)
        if isinstance(project, Response):
            return project
        return await run_in_threadpool(_answer, handler, request, request.app.state.tt, project)

    return route


def _answer(handler: Handler, request: Request, state: ServerState, project: str) -> Response:
    try:
        return handler(request, state, project)
    except BAD_REQUEST as exc:
        return error(400, str(exc))


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadParameter(f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise BadParameter(f"{name} must be between {low} and {high}")
    return value


async def project_and_json(request: Request, limit: int, expected: str) -> tuple[str, Any] | JSON:
    """The caller's project and its JSON body (`expected` names it in the 400), or the error
    answer: 401 without a valid key, 413 over `limit` bytes, 400 when the body is not JSON."""
    project = caller(request)
    if isinstance(project, Response):
        return project
    try:
        return project, orjson.loads(await read_body(request, limit))
    except BodyTooLarge:
        return error(413, f"body larger than the limit of {limit} bytes")
    except orjson.JSONDecodeError as exc:
        return error(400, f"body must be JSON ({expected}): {exc}")


def json_route(
    limit: int, expected: str
) -> Callable[[JsonHandler], Callable[[Request], Awaitable[Response]]]:
    """Authenticate and read the JSON body (`expected` names it in the 400), then run the
    (blocking) handler with the state, the project and the body in the threadpool."""

    def wrap(handler: JsonHandler) -> Route:
        @wraps(handler)
        async def route(request: Request) -> Response:
            found = await project_and_json(request, limit, expected)
            if isinstance(found, Response):
                return found
            project, data = found
            return await run_in_threadpool(handler, request.app.state.tt, project, data)

        return route

    return wrap
