"""Tail sampling: the project's policy (from the --sampling file, or set here), what a policy
would keep, and a sweep on demand.

GET/PUT/DELETE /api/v1/sampling/policy, POST /api/v1/sampling/simulate ({"since": "7d",
"until": optional, "policy": optional, else the project's}), POST /api/v1/sampling/apply.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.jobs.sampler import PolicyError, parse_policy, policy_spec, summary
from tokentrace.query import sampling
from tokentrace.server.responses import JSON, error
from tokentrace.server.routing import json_route, project_route
from tokentrace.server.state import ServerState
from tokentrace.timerange import TimeRangeError, parse_instant

_BODY_LIMIT = 64 * 1024


def _policy_answer(state: ServerState, project: str) -> dict[str, Any]:
    policy, source = state.sampler.policy_for(project)
    return {"source": source, "policy": policy_spec(policy) if policy else None}


@project_route
def get_policy(request: Request, state: ServerState, project: str) -> Response:
    return JSON(_policy_answer(state, project))


@json_route(_BODY_LIMIT, "the sampling policy")
def put_policy(state: ServerState, project: str, data: Any) -> Response:
    """Set the caller's project's policy (it replaces the file's); applied from the next sweep."""
    if not isinstance(data, dict):
        return error(400, "body must be a JSON object: the sampling policy")
    try:
        policy = parse_policy(data)
    except PolicyError as exc:
        return error(400, str(exc))
    state.store.put_sampling_policy(project, orjson.dumps(policy_spec(policy)).decode())
    return JSON(_policy_answer(state, project))


@project_route
def delete_policy(request: Request, state: ServerState, project: str) -> Response:
    state.store.put_sampling_policy(project, None)
    return JSON(_policy_answer(state, project))


@json_route(_BODY_LIMIT, "since, until and policy")
def simulate(state: ServerState, project: str, data: Any) -> Response:
    """What a policy (the project's, or one sent) would keep of the stored traces."""
    if not isinstance(data, dict):
        return error(400, 'body must be a JSON object like {"since": "7d"}')
    now = datetime.now(UTC)
    try:
        since = parse_instant(str(data.get("since") or "7d"), now)
        until = parse_instant(str(data["until"]), now) if data.get("until") else now
        policy = parse_policy(data["policy"]) if data.get("policy") is not None else None
    except (PolicyError, TimeRangeError) as exc:
        return error(400, str(exc))
    if policy is None:
        policy, _ = state.sampler.policy_for(project)
        if policy is None:
            return error(
                400,
                'the project has no sampling policy to simulate: send one as "policy" (the CLI: '
                "--policy FILE), or set one first (tokentrace sampling policy --set FILE, or "
                "serve --sampling FILE)",
            )
    report = sampling.simulate(state.store, project, policy, since, until)
    return JSON({"policy": policy_spec(policy), **asdict(report)})


@project_route
def apply_now(request: Request, state: ServerState, project: str) -> Response:
    """Sweep the caller's project now (the sampler also does, every --sampling-interval)."""
    policy, _ = state.sampler.policy_for(project)
    if policy is None:
        return error(409, "the project has no sampling policy")
    verdicts = state.store.apply_sampling(project, policy, datetime.now(UTC))
    return JSON(summary(verdicts))


routes = [
    Route("/api/v1/sampling/policy", get_policy, methods=["GET"]),
    Route("/api/v1/sampling/policy", put_policy, methods=["PUT"]),
    Route("/api/v1/sampling/policy", delete_policy, methods=["DELETE"]),
    Route("/api/v1/sampling/simulate", simulate, methods=["POST"]),
    Route("/api/v1/sampling/apply", apply_now, methods=["POST"]),
]
