"""One LLM call through the gateway: read the request, hold it to its budgets, forward it,
pass the answer back as it arrives (stream events one by one), and record it as a span."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine
from typing import Any

import aiohttp
import orjson

from tokentrace import vocab
from tokentrace.budgets import Decision, Usage, decide_async, estimate, settlement
from tokentrace.proxy.asgi import Send, respond, start_response
from tokentrace.proxy.exchange import BadRequest, CallRequest, Endpoint, Outcome
from tokentrace.proxy.headers import (
    as_text,
    client_key,
    returned_headers,
    tags_of,
    upstream_headers,
)
from tokentrace.proxy.spans import GatewaySpan
from tokentrace.proxy.sse import EventSplitter, event_data
from tokentrace.proxy.state import GatewayState
from tokentrace.semconv import TAG_ATTRIBUTES


def upstream_error_type(status: int, body: bytes) -> str:
    """The canonical error type of an upstream's error answer, by the rules ingest reads any span
    with: the provider's error code, message and type first, its status when they say nothing."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    clues = [error.get(k) for k in ("code", "message", "type")] if isinstance(error, dict) else []
    return vocab.error_type(*clues, http_status=status)


def _budget_attributes(
    span: GatewaySpan, decision: Decision, requested: str | None
) -> list[tuple[bytes, bytes]]:
    """Span attributes and response headers saying what the budgets did to this call."""
    span.set_attributes(decision.span_attributes(requested))
    headers = []
    if decision.warnings:
        headers.append((b"x-tokentrace-budget-warning", "; ".join(decision.warnings).encode()))
    if decision.downgraded_by:
        note = f"{requested} -> {decision.model} by budget {decision.downgraded_by!r}"
        headers.append((b"x-tokentrace-budget-downgraded", note.encode()))
    return headers


def _trace_header(span: GatewaySpan) -> tuple[bytes, bytes]:
    return (b"x-tokentrace-trace-id", span.trace_id_hex.encode())


async def _refuse(send: Send, endpoint: Endpoint, span: GatewaySpan, decision: Decision) -> None:
    retry_after = decision.retry_after_s or 0
    message = decision.refusal
    headers = [
        (b"retry-after", str(math.ceil(retry_after)).encode()),
        # The SDKs retry 429s by themselves: worth it for a minute's window, not for a day's.
        (b"x-should-retry", b"true" if retry_after <= 60 else b"false"),
        _trace_header(span),
    ]
    await respond(send, 429, endpoint.error_body(429, "budget_exceeded", message), headers)
    span.set_attributes({"http.response.status_code": 429, **decision.span_attributes(None)})
    span.fail("budget_exceeded", message)


async def call(
    state: GatewayState, scope: dict[str, Any], raw: bytes, send: Send, endpoint: Endpoint, started_ns: int
) -> None:
    """Serve one call of `endpoint` (its body already read); cancelled by the app when the
    client goes away."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    try:
        body = orjson.loads(raw)
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        request = endpoint.read_request(body)
    except (orjson.JSONDecodeError, BadRequest) as exc:
        message = str(exc) if isinstance(exc, BadRequest) else "the request body is not valid JSON"
        await respond(send, 400, endpoint.error_body(400, "invalid_request_error", message))
        return
    upstream = state.config.upstreams.get(endpoint.provider)
    if upstream is None:
        name = endpoint.provider
        message = f"this gateway has no {name} upstream (start it with --upstream {name}=URL)"
        await respond(send, 404, endpoint.error_body(404, "not_found_error", message))
        return
    key = client_key(headers)
    tags = tags_of(headers)
    if state.config.keys:
        mapped = state.config.keys.get(key or "")
        if mapped is None:
            message = "this gateway needs one of its client keys (Authorization: Bearer … or x-api-key)"
            await respond(send, 401, endpoint.error_body(401, "authentication_error", message))
            return
        tags.update(mapped)  # a key's tags win: a client cannot move its spend to another tenant

    attributes: dict[str, Any] = {
        "gen_ai.operation.name": endpoint.operation,
        "gen_ai.provider.name": endpoint.provider,
        "gen_ai.request.model": request.model,
        "tokentrace.gateway.upstream": upstream.url,
        **request.attributes,
    }
    for tag, value in tags.items():
        attributes[TAG_ATTRIBUTES[tag]] = value
    span = state.sink.start(
        f"{endpoint.operation} {request.model}",
        _header(headers, b"traceparent"),
        _header(headers, b"tracestate"),
        started_ns,
        attributes,
    )
    outcome = Outcome()
    decision: Decision | None = None
    reserve = Usage()
    extra_headers: list[tuple[bytes, bytes]] = []
    try:
        if state.policy.budgets:
            reserve = estimate(len(raw), request.max_tokens, state.policy)
            budget_tags = {**tags, "api_key": key}
            decision = await decide_async(
                state.counters,
                state.policy,
                state.book,
                budget_tags,
                endpoint.provider,
                request.model or "",
                reserve,
            )
            _schedule_alerts(state, decision)
            if not decision.allowed:
                await _refuse(send, endpoint, span, decision)
                return
            extra_headers = _budget_attributes(span, decision, request.model)
            if decision.model != request.model:
                body["model"] = decision.model
        if (decision is not None and decision.model != request.model) or request.hide_usage_event:
            raw = orjson.dumps(body)
        extra_headers.append(_trace_header(span))
        await _forward(
            state,
            send,
            endpoint,
            request,
            span,
            raw,
            headers,
            upstream.url + _target(scope),
            upstream.api_key,
            outcome,
            extra_headers,
        )
    except asyncio.CancelledError:
        span.fail("cancelled", "the client closed the connection before the answer ended")
        raise
    except Exception as exc:
        span.record_exception(exc)
        span.fail("other", f"gateway error: {type(exc).__name__}: {exc}")
        raise
    finally:
        _finish(state, span, outcome, started_ns, decision, reserve)


def _target(scope: dict[str, Any]) -> str:
    query = scope.get("query_string") or b""
    return scope["path"] + ("?" + query.decode("latin-1") if query else "")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


async def _forward(
    state: GatewayState,
    send: Send,
    endpoint: Endpoint,
    request: CallRequest,
    span: GatewaySpan,
    raw: bytes,
    headers: list[tuple[bytes, bytes]],
    target: str,
    api_key: str | None,
    outcome: Outcome,
    extra_headers: list[tuple[bytes, bytes]],
) -> None:
    out_headers = upstream_headers(headers, endpoint.provider, api_key)
    out_headers.append((b"traceparent", span.traceparent().encode()))
    if span.trace_state:
        out_headers.append((b"tracestate", span.trace_state.encode()))
    try:
        response = await state.client.post(
            target, data=raw, headers=as_text(out_headers), allow_redirects=False
        )
    except TimeoutError as exc:
        await respond(send, 504, endpoint.error_body(504, "timeout", f"the upstream did not answer: {exc}"))
        span.set_attribute("http.response.status_code", 504)
        span.fail("timeout", f"upstream timeout: {exc}")
        return
    except aiohttp.ClientError as exc:
        message = f"the upstream {target} cannot be reached: {type(exc).__name__}: {exc}"
        await respond(send, 502, endpoint.error_body(502, "upstream_unreachable", message))
        span.set_attribute("http.response.status_code", 502)
        span.fail("server_error", message)
        return
    try:
        status = response.status
        span.set_attribute("http.response.status_code", status)
        await start_response(send, status, returned_headers(response.raw_headers) + extra_headers)
        streamed = response.content_type == "text/event-stream"
        if streamed and status < 400:
            await _pass_events(send, endpoint, request, response, outcome)
        else:
            content = await response.read()
            await send({"type": "http.response.body", "body": content, "more_body": False})
            if status >= 400:
                span.fail(upstream_error_type(status, content), content[:500].decode("utf-8", "replace"))
            else:
                _read_json(endpoint, outcome, content)
    except (aiohttp.ClientError, TimeoutError) as exc:
        # The answer had started: its status cannot change now; the stream just ends early.
        span.fail("server_error", f"the upstream broke off: {type(exc).__name__}: {exc}")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        response.close()  # mid-answer (the client left), this drops the upstream connection


async def _pass_events(
    send: Send, endpoint: Endpoint, request: CallRequest, response, outcome: Outcome
) -> None:
    splitter = EventSplitter()
    read_event = endpoint.read_event
    async for chunk in response.content.iter_any():
        now = time.time_ns()
        passed = []
        for event in splitter.feed(chunk):
            data = event_data(event)
            if data is not None and read_event(outcome, data, now) and request.hide_usage_event:
                continue
            passed.append(event)
        if passed:
            await send({"type": "http.response.body", "body": b"".join(passed), "more_body": True})
    await send({"type": "http.response.body", "body": splitter.rest(), "more_body": False})


def _read_json(endpoint: Endpoint, outcome: Outcome, content: bytes) -> None:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return
    if isinstance(data, dict):
        endpoint.read_json(outcome, data)


_background: set[asyncio.Task] = set()  # keeps fire-and-forget tasks alive until done


def _spawn(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` after the answer, without the client waiting on it."""
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


def _schedule_alerts(state: GatewayState, decision: Decision) -> None:
    alerts = state.alerts.due(decision)
    if alerts:
        _spawn(state.alerts.send(alerts))


def _finish(
    state: GatewayState,
    span: GatewaySpan,
    outcome: Outcome,
    started_ns: int,
    decision: Decision | None,
    reserve: Usage,
) -> None:
    span.set_attributes(outcome.attributes())
    if outcome.first_token_ns is not None:
        span.set_attribute("tokentrace.ttft_ms", (outcome.first_token_ns - started_ns) / 1e6)
    state.sink.end(span)
    if decision is not None and decision.allowed:
        # A stream cut short used its prompt even if the usage never came: count the estimate.
        actual = outcome.usage()
        if outcome.input_tokens is None and outcome.output_events:
            actual = Usage(reserve.input_tokens, actual.output_tokens)
        changes = settlement(decision, state.book, decision.model, actual)
        if changes:
            _spawn(state.counters.add(changes))
