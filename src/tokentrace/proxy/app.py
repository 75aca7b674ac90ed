"""The gateway's ASGI app: provider routes, pass-through for the rest of /v1, health, budgets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiohttp

from tokentrace.budgets.counters import AsyncCounters, MemoryCounters
from tokentrace.budgets.redis_counters import AsyncRedisCounters
from tokentrace.budgets.webhooks import BudgetAlerts
from tokentrace.pricing import PriceBook
from tokentrace.proxy import anthropic_api, batches, budget_api, forward, openai_api, relay
from tokentrace.proxy.asgi import (
    BodyTooLarge,
    Receive,
    Send,
    read_body,
    respond,
    respond_json,
    until_disconnect,
)
from tokentrace.proxy.config import ProxyConfig
from tokentrace.proxy.spans import SpanSink
from tokentrace.proxy.state import GatewayState

log = logging.getLogger("tokentrace.proxy")
ENDPOINTS = {**openai_api.ENDPOINTS, **anthropic_api.ENDPOINTS}


class Gateway:
    """An OpenAI- and Anthropic-compatible gateway that records every call as a gen_ai span."""

    def __init__(self, config: ProxyConfig, sink: SpanSink) -> None:
        self.config = config
        self.sink = sink
        self.state: GatewayState | None = None
        self._follower: asyncio.Task | None = None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        state = self.state
        assert state is not None, "the lifespan startup has not run"
        path = scope["path"]
        endpoint = ENDPOINTS.get(path)
        if endpoint is not None and scope["method"] == "POST":
            await self._call(state, scope, receive, send, endpoint)
        elif path == "/healthz":
            healthy = await _redis_ok(state)
            # Spans lost on the way to the trace endpoint are no reason to stop forwarding
            # calls, but they are said here rather than lost quietly.
            body = {"status": "ok" if healthy else "redis unreachable", "spans": state.sink.counts()}
            await respond_json(send, 200 if healthy else 503, body)
        elif path == budget_api.PATH:
            await budget_api.handle(state, scope, receive, send)
        elif path.startswith("/v1/") and batches.handles(scope):
            await batches.handle(state, scope, receive, send)
        elif path.startswith("/v1/"):
            await _pass_through(state, scope, receive, send)
        else:
            await respond_json(send, 404, {"error": f"no route {path}: this is a tokentrace gateway"})

    async def _call(
        self, state: GatewayState, scope: dict[str, Any], receive: Receive, send: Send, endpoint
    ) -> None:
        started_ns = time.time_ns()
        try:
            raw = await read_body(receive, state.config.max_body_bytes)
        except BodyTooLarge:
            message = f"the request body is over {state.config.max_body_bytes} bytes"
            await respond(send, 413, endpoint.error_body(413, "request_too_large", message))
            return
        # The client going away cancels the call: the upstream request is closed with it. (Once
        # the answer is complete, the server reports a disconnect too: that one cancels nothing.)
        answered = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = True

        work = asyncio.ensure_future(forward.call(state, scope, raw, tracked_send, endpoint, started_ns))
        gone = asyncio.ensure_future(until_disconnect(receive))
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
        if not work.done() and not answered:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return
        gone.cancel()
        await work

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self) -> None:
        config = self.config
        if config.redis_url:
            counters: Any = AsyncRedisCounters(config.redis_url)
            try:
                await counters.ping()
            except Exception as exc:
                raise RuntimeError(f"Redis at {config.redis_url} does not answer: {exc}") from None
        else:
            counters = AsyncCounters(MemoryCounters())
        # aiohttp rather than httpx upstream: measured, it adds half the gateway's latency
        # (bench/proxy.py). Answers are passed on as they come: no decompression, no redirects.
        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=2000, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=600),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type"),
        )
        self.state = GatewayState(
            config,
            client,
            self.sink,
            counters,
            PriceBook(),
            BudgetAlerts(config.policy.webhooks, client),
            config.policy,
        )
        if config.redis_url:
            self._follower = asyncio.ensure_future(budget_api.follow_shared(self.state))

    async def stop(self) -> None:
        if self._follower:
            self._follower.cancel()
        if self.state is not None:
            await self.state.client.close()
            await self.state.counters.close()
        await asyncio.to_thread(self.sink.flush)


async def _redis_ok(state: GatewayState) -> bool:
    try:
        return await state.counters.ping()
    except Exception:
        return False


async def _pass_through(state: GatewayState, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Any other /v1 route (models, files, token counting …) goes to its upstream untraced."""
    body = await read_body(receive, state.config.max_body_bytes)
    response = await relay.request(state, scope, body, send)
    if response is not None:
        await relay.stream_back(response, send)
