"""POST /api/v1/reconcile: the provider's bill against what was traced, per day and model.

The body is `{"provider": "openai" | "anthropic", "export": …}`: the provider's cost or usage
export (query/invoices.py lists the formats) as the text of its file, or as its JSON.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.query.invoices import InvoiceError, read_export
from tokentrace.query.reconcile import reconcile
from tokentrace.server.responses import JSON, error
from tokentrace.server.routing import json_route
from tokentrace.server.state import ServerState

#: A year of daily buckets by line item is a few MB.
BODY_LIMIT = 32 * 1024 * 1024


@json_route(BODY_LIMIT, '{"provider": "openai", "export": <the cost or usage export>}')
def post_reconcile(state: ServerState, project: str, data: Any) -> Response:
    if not isinstance(data, dict) or "export" not in data:
        return error(400, 'body must be a JSON object like {"provider": "openai", "export": <the export>}')
    export = data["export"]
    text = export if isinstance(export, str) else orjson.dumps(export)
    try:
        billed = read_export(str(data.get("provider")), text)
        result = reconcile(state.store, project, str(data["provider"]), billed)
    except (InvoiceError, ValueError) as exc:
        return error(400, str(exc))
    return JSON(asdict(result))


routes = [Route("/api/v1/reconcile", post_reconcile, methods=["POST"])]
