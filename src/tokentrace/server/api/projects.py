"""Projects and keys (admin: create, list, delete with all their data), and re-pricing a
project's stored spans."""

from __future__ import annotations

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.jobs.reprice import reprice
from tokentrace.pricing.overrides import OverridesError, load_overrides
from tokentrace.query import filters
from tokentrace.server.auth import PROJECT_ID, hash_key, is_admin, new_key
from tokentrace.server.responses import JSON, error
from tokentrace.server.routing import project_route
from tokentrace.server.state import ServerState


def _not_admin(state: ServerState, doing: str) -> Response:
    """The 403 of a project-management call, saying how to get the right to make it."""
    if state.config.admin_token:
        message = f"{doing} projects needs the admin token: send it as 'Authorization: Bearer <token>'"
    elif state.config.anonymous_allowed:  # a loopback server without --require-key, sent a key
        message = f"{doing} projects is open on this server to requests without a key: send none"
    else:
        message = (
            f"{doing} projects needs an admin token, and this server has none: restart it with "
            "--admin-token (or TOKENTRACE_ADMIN_TOKEN set) and send that token as the Bearer key"
        )
    return error(403, message)


async def create_project(request: Request) -> Response:
    state: ServerState = request.app.state.tt
    if not is_admin(state, request.headers.get("authorization")):
        return _not_admin(state, "creating")
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        return error(400, 'body must be JSON: {"name": "..."}')
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not PROJECT_ID.match(name):
        return error(400, "name must be 1-63 of a-z, 0-9, '_' or '-', starting with a letter or digit")
    if any(p.project_id == name for p in state.store.projects()):
        return error(409, f"project {name!r} already exists")
    key = new_key()
    await run_in_threadpool(state.store.create_project, name, hash_key(key))
    return JSON({"project_id": name, "api_key": key}, status_code=201)


async def list_projects(request: Request) -> Response:
    state: ServerState = request.app.state.tt
    if not is_admin(state, request.headers.get("authorization")):
        return _not_admin(state, "listing")
    return JSON(
        {
            "projects": [
                {"project_id": p.project_id, "created_at": p.created_at.isoformat()}
                for p in state.store.projects()
            ]
        }
    )


async def delete_project(request: Request) -> Response:
    """The project, its keys and all its data (what is still on its way is written first)."""
    state: ServerState = request.app.state.tt
    if not is_admin(state, request.headers.get("authorization")):
        return _not_admin(state, "deleting")
    name = request.path_params["name"]
    if not any(p.project_id == name for p in state.store.projects()):
        return error(404, f"no project {name!r}")
    await run_in_threadpool(state.pipeline.writer.flush)
    deleted = await run_in_threadpool(state.store.delete_project, name)
    return JSON({"project_id": name, "deleted": deleted})


@project_route
def reprice_spans(request: Request, state: ServerState, project: str) -> Response:
    """Reload the overrides file, flush pending spans, and re-price the range."""
    if state.config.prices_file is not None:
        try:
            state.prices.reload(load_overrides(state.config.prices_file))
        except (OSError, OverridesError) as exc:
            return error(400, f"cannot load the prices file: {exc}")
    state.pipeline.writer.flush()
    report = reprice(state.store, state.prices, filters.span_filter(project, dict(request.query_params)))
    return JSON({**report.__dict__, "difference_usd": report.difference_usd})


routes = [
    Route("/api/v1/projects", create_project, methods=["POST"]),
    Route("/api/v1/projects", list_projects, methods=["GET"]),
    Route("/api/v1/projects/{name}", delete_project, methods=["DELETE"]),
    Route("/api/v1/reprice", reprice_spans, methods=["POST"]),
]
