"""Batch jobs through the gateway: OpenAI's Batch API and Anthropic's Message Batches.

A batch is created with the tags of its request (x-tokentrace-* headers, or the client key's),
remembered by id (proxy/batch_book.py). When the client reads the results (OpenAI: the output
and error files the batch names; Anthropic: the batch's results), each result becomes a span of
its own: the call's usage, priced at the batch rate (service tier `batch`), with the batch's tags
and the request's `custom_id`. A result's span identity comes from the batch and the custom_id,
so results read twice are stored once. A result's span lasts no time: the gateway never saw the
call, only its answer.

Anthropic's `results_url` names the provider's host: the gateway answers it with its own, so
that the SDK reads the results through the gateway.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from datetime import datetime
from typing import Any

import orjson

from tokentrace.proxy import anthropic_api, openai_api, relay
from tokentrace.proxy.asgi import Receive, Send, read_body
from tokentrace.proxy.batch_book import BatchJob
from tokentrace.proxy.exchange import Endpoint, Outcome
from tokentrace.proxy.forward import upstream_error_type
from tokentrace.proxy.headers import client_key, tags_of
from tokentrace.proxy.spans import GatewaySpan
from tokentrace.proxy.state import GatewayState
from tokentrace.semconv import TAG_ATTRIBUTES

_OPENAI_BATCH = re.compile(r"^/v1/batches/([^/]+)$")
_OPENAI_FILE = re.compile(r"^/v1/files/([^/]+)/content$")
_ANTHROPIC_BATCH = re.compile(r"^/v1/messages/batches/([^/]+)$")
_ANTHROPIC_RESULTS = re.compile(r"^/v1/messages/batches/([^/]+)/results$")
#: What an OpenAI batch's answer body is, when the batch's endpoint is not known.
_CHAT = "/v1/chat/completions"
_OBJECTS = {"chat.completion": _CHAT, "response": "/v1/responses", "list": "/v1/embeddings"}


def handles(scope: dict[str, Any]) -> bool:
    """Whether the request is one of a batch's: created, looked up, or its results read."""
    path, method = scope["path"], scope["method"]
    if method == "POST":
        return path in ("/v1/batches", "/v1/messages/batches")
    return method == "GET" and any(
        p.match(path) for p in (_OPENAI_BATCH, _OPENAI_FILE, _ANTHROPIC_BATCH, _ANTHROPIC_RESULTS)
    )


async def handle(state: GatewayState, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    body = await read_body(receive, state.config.max_body_bytes)
    response = await relay.request(state, scope, body, send)
    if response is None:
        return
    path = scope["path"]
    if scope["method"] == "POST":
        answer = await response.read()
        if response.status == 200:
            _created(state, scope, body, answer)
        await relay.answer_back(response, answer, send)
    elif (found := _OPENAI_BATCH.match(path) or _ANTHROPIC_BATCH.match(path)) is not None:
        answer = await response.read()
        if response.status == 200:
            answer = _looked_up(state, scope, found[1], answer)
        await relay.answer_back(response, answer, send)
    elif response.status != 200:
        await relay.stream_back(response, send)
    else:
        found = _ANTHROPIC_RESULTS.match(path)
        if found is not None:
            batch_id, job = found[1], state.batches.job(found[1], "anthropic")
        else:
            file_id = _OPENAI_FILE.match(path)[1]  # type: ignore[index]
            known = state.batches.batch_of_file(file_id)
            # a file no batch named here (a restart since, or no batch's at all): watched, not kept
            batch_id, job = (
                (known, state.batches.job(known, "openai")) if known else (file_id, BatchJob("openai"))
            )
        lines = _Results(state, job, batch_id, _tags(state, scope))
        await relay.stream_back(response, send, lines.feed)
        lines.close()


def _tags(state: GatewayState, scope: dict[str, Any]) -> dict[str, str]:
    """The request's tags, a mapped client key's winning (as for a call)."""
    tags = tags_of(scope["headers"])
    if state.config.keys:
        tags.update(state.config.keys.get(client_key(scope["headers"]) or "") or {})
    return tags


def _created(state: GatewayState, scope: dict[str, Any], body: bytes, answer: bytes) -> None:
    try:
        created, asked = orjson.loads(answer), orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if not isinstance(created, dict) or not isinstance(created.get("id"), str):
        return
    provider = "anthropic" if scope["path"] == "/v1/messages/batches" else "openai"
    job = state.batches.job(created["id"], provider)
    job.tags = _tags(state, scope)
    if isinstance(asked, dict) and isinstance(asked.get("endpoint"), str):
        job.endpoint = asked["endpoint"]


def _looked_up(state: GatewayState, scope: dict[str, Any], batch_id: str, answer: bytes) -> bytes:
    """Note what the batch says (its files, its end); Anthropic's results_url pointed here."""
    try:
        batch = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return answer
    if not isinstance(batch, dict):
        return answer
    if scope["path"].startswith("/v1/batches/"):
        job = state.batches.job(batch_id, "openai")
        if not job.tags:
            job.tags = _tags(state, scope)
        if isinstance(batch.get("endpoint"), str):
            job.endpoint = batch["endpoint"]
        for name in ("output_file_id", "error_file_id"):
            if isinstance(batch.get(name), str):
                state.batches.add_file(batch[name], batch_id)
        return answer
    job = state.batches.job(batch_id, "anthropic")
    if not job.tags:
        job.tags = _tags(state, scope)
    ended = batch.get("ended_at")
    if isinstance(ended, str):
        with contextlib.suppress(ValueError):
            job.ended_ns = int(datetime.fromisoformat(ended.replace("Z", "+00:00")).timestamp() * 1e9)
    if isinstance(batch.get("results_url"), str):
        batch["results_url"] = f"{_origin(scope)}/v1/messages/batches/{batch_id}/results"
        return orjson.dumps(batch)
    return answer


def _origin(scope: dict[str, Any]) -> str:
    host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


class _Results:
    """A results file as it passes: each JSONL line a span."""

    def __init__(self, state: GatewayState, job: BatchJob, batch_id: str, fetch_tags: dict[str, str]) -> None:
        self.state, self.job, self.batch_id = state, job, batch_id
        self.tags = {**fetch_tags, **job.tags}
        self.pending = b""
        self.watching = True  # until a line is no batch result (a file of another kind)

    def feed(self, chunk: bytes) -> None:
        if not self.watching:
            return
        lines = (self.pending + chunk).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            self._line(line)

    def close(self) -> None:
        if self.watching and self.pending.strip():
            self._line(self.pending)

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            result = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.watching = False
            return
        span = result_span(self.job, self.batch_id, result, self.tags, time.time_ns())
        if span is None:
            self.watching = isinstance(result, dict) and "custom_id" in result
            return
        self.state.sink.record(span)


def _identity(*parts: str) -> tuple[int, int]:
    """(trace id, span id): one trace per batch, one span per request of it."""
    trace = int(hashlib.sha256(parts[0].encode()).hexdigest()[:32], 16) or 1
    span = int(hashlib.sha256(":".join(parts).encode()).hexdigest()[:16], 16) or 1
    return trace, span


def result_span(
    job: BatchJob, batch_id: str, result: Any, tags: dict[str, str], now_ns: int
) -> GatewaySpan | None:
    """The span of one line of a batch's results; None when the line is no request's result
    (or one that never ran: canceled, expired)."""
    if not isinstance(result, dict) or not isinstance(result.get("custom_id"), str):
        return None
    custom_id = result["custom_id"]
    outcome = Outcome()
    error: tuple[str, str] | None = None
    start_ns = job.ended_ns or now_ns
    if job.provider == "anthropic":
        endpoint = anthropic_api.ENDPOINTS["/v1/messages"]
        kind = (result.get("result") or {}).get("type")
        answer = (result.get("result") or {}).get("message")
        if kind == "succeeded" and isinstance(answer, dict):
            endpoint.read_json(outcome, answer)
        elif kind == "errored":
            detail = orjson.dumps((result.get("result") or {}).get("error"))
            error = (upstream_error_type(400, detail), detail.decode()[:500])
        else:
            return None
    else:
        response = result.get("response")
        if not isinstance(response, dict):
            return None
        answer = response.get("body")
        status = response.get("status_code")
        kind = answer.get("object") if isinstance(answer, dict) else None
        path = (
            job.endpoint
            if job.endpoint in openai_api.ENDPOINTS
            else _OBJECTS.get(kind, "/v1/chat/completions")
        )
        endpoint = openai_api.ENDPOINTS[path]
        if status == 200 and isinstance(answer, dict):
            endpoint.read_json(outcome, answer)
            if isinstance(answer.get("created"), int):
                start_ns = answer["created"] * 1_000_000_000
        else:
            detail = orjson.dumps(answer if answer is not None else result.get("error"))
            code = status if isinstance(status, int) else 500
            error = (upstream_error_type(code, detail), detail.decode()[:500])
    return _span(job, batch_id, custom_id, endpoint, outcome, error, tags, start_ns)


def _span(
    job: BatchJob,
    batch_id: str,
    custom_id: str,
    endpoint: Endpoint,
    outcome: Outcome,
    error: tuple[str, str] | None,
    tags: dict[str, str],
    start_ns: int,
) -> GatewaySpan:
    outcome.service_tier = "batch"  # billed at the batch rate, whatever the answer says
    model = outcome.response_model
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": endpoint.operation,
        "gen_ai.provider.name": job.provider,
        "gen_ai.request.model": model,
        "tokentrace.batch.id": batch_id,
        "tokentrace.batch.custom_id": custom_id,
        **outcome.attributes(),
    }
    for tag, value in tags.items():
        attributes[TAG_ATTRIBUTES[tag]] = value
    trace_id, span_id = _identity(batch_id, custom_id)
    span = GatewaySpan(
        f"{endpoint.operation} {model}" if model else endpoint.operation,
        trace_id,
        span_id,
        None,
        1,
        "",
        start_ns,
        {k: v for k, v in attributes.items() if v is not None},
        end_ns=start_ns,
    )
    if error is not None:
        span.fail(*error)
    return span
