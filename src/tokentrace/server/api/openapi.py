"""GET /api/v1/openapi.json: the REST API's OpenAPI document (openapi.yaml beside this file).

The YAML shares the filter parameters through anchors; a list of them inside `parameters`
is flattened here, and the anchors' holders (top-level `x-` keys) are left out.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.server.responses import JSON


def _flatten(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _flatten(v) for k, v in node.items()}
        if isinstance(out.get("parameters"), list):
            flat: list[Any] = []
            for item in out["parameters"]:
                flat.extend(item if isinstance(item, list) else [item])
            out["parameters"] = flat
        return out
    if isinstance(node, list):
        return [_flatten(v) for v in node]
    return node


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document as a dict."""
    import yaml  # here, not at import: the document is asked for rarely (~1.5 MB idle)

    text = resources.files(__package__).joinpath("openapi.yaml").read_text()
    spec = yaml.safe_load(text)
    return _flatten({k: v for k, v in spec.items() if not k.startswith("x-")})


async def openapi(request: Request) -> Response:
    return JSON(document())


routes = [Route("/api/v1/openapi.json", openapi)]
