"""Calls the gateway passes on without reading them as LLM calls (models, files, batches …): to
the upstream the client speaks to, the answer back as it comes; a watcher may see each chunk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from tokentrace.proxy.asgi import Send, respond_json
from tokentrace.proxy.headers import as_text, returned_headers, upstream_headers
from tokentrace.proxy.state import GatewayState


def provider_of(scope: dict[str, Any]) -> str:
    """Anthropic's when the client speaks Anthropic (an anthropic-version header), else OpenAI's."""
    return "anthropic" if any(name == b"anthropic-version" for name, _ in scope["headers"]) else "openai"


async def request(
    state: GatewayState, scope: dict[str, Any], body: bytes, send: Send
) -> aiohttp.ClientResponse | None:
    """The upstream's answer to the client's request (`body` read already); None when there is
    none, the client told why (no such upstream: 404, unreachable: 502)."""
    provider = provider_of(scope)
    upstream = state.config.upstreams.get(provider)
    if upstream is None:
        await respond_json(send, 404, {"error": f"this gateway has no {provider} upstream"})
        return None
    query = scope.get("query_string") or b""
    url = upstream.url + scope["path"] + ("?" + query.decode("latin-1") if query else "")
    try:
        return await state.client.request(
            scope["method"],
            url,
            data=body,
            headers=as_text(upstream_headers(scope["headers"], provider, upstream.api_key)),
            allow_redirects=False,
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        await respond_json(send, 502, {"error": f"the upstream cannot be reached: {exc}"})
        return None


async def stream_back(
    response: aiohttp.ClientResponse, send: Send, watch: Callable[[bytes], None] | None = None
) -> None:
    """The upstream's answer to the client as it arrives, each chunk shown to `watch` first."""
    try:
        headers = returned_headers(response.raw_headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        async for chunk in response.content.iter_any():
            if watch is not None:
                watch(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        response.close()


async def answer_back(response: aiohttp.ClientResponse, body: bytes, send: Send) -> None:
    """`body` (the upstream's answer, read and perhaps rewritten) to the client."""
    headers = returned_headers(response.raw_headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
