"""The Anthropic Messages API as the gateway sees it."""

from __future__ import annotations

from typing import Any

import orjson

from tokentrace.proxy.exchange import CallRequest, Endpoint, Outcome, integer, number, require_model


def error_body(status: int, kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})


def messages_request(body: dict[str, Any]) -> CallRequest:
    model = require_model(body)
    stream = body.get("stream") is True
    max_tokens = integer(body.get("max_tokens"))
    values = {
        "gen_ai.request.temperature": number(body.get("temperature")),
        "gen_ai.request.top_p": number(body.get("top_p")),
        "gen_ai.request.top_k": integer(body.get("top_k")),
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.stream": stream,
    }
    return CallRequest(model, stream, max_tokens, {k: v for k, v in values.items() if v is not None})


def _usage(outcome: Outcome, usage: Any) -> None:
    """OTel meaning: input tokens include cache reads and writes (Anthropic reports them apart)."""
    if not isinstance(usage, dict):
        return
    raw_input = integer(usage.get("input_tokens"))
    read = integer(usage.get("cache_read_input_tokens"))
    written = integer(usage.get("cache_creation_input_tokens"))
    if raw_input is not None:
        outcome.input_tokens = raw_input + (read or 0) + (written or 0)
        outcome.cache_read_tokens = read
        outcome.cache_write_tokens = written
    if integer(usage.get("output_tokens")) is not None:
        outcome.output_tokens = usage["output_tokens"]
    if isinstance(usage.get("service_tier"), str):  # standard, priority or batch
        outcome.service_tier = usage["service_tier"]


def _stop(outcome: Outcome, reason: Any) -> None:
    if isinstance(reason, str):
        outcome.finish_reasons = [reason]
        outcome.refusal = outcome.refusal or reason == "refusal"


def message_json(outcome: Outcome, data: dict[str, Any]) -> None:
    if isinstance(data.get("model"), str):
        outcome.response_model = data["model"]
    if isinstance(data.get("id"), str):
        outcome.response_id = data["id"]
    _stop(outcome, data.get("stop_reason"))
    _usage(outcome, data.get("usage"))


def message_event(outcome: Outcome, data: dict[str, Any], now_ns: int) -> bool:
    kind = data.get("type")
    if kind == "content_block_delta":
        outcome.output_events += 1
        if outcome.first_token_ns is None:
            outcome.first_token_ns = now_ns
    elif kind == "message_start" and isinstance(data.get("message"), dict):
        message_json(outcome, data["message"])
    elif kind == "message_delta":
        delta = data.get("delta")
        if isinstance(delta, dict):
            _stop(outcome, delta.get("stop_reason"))
        usage = data.get("usage")
        if isinstance(usage, dict) and integer(usage.get("output_tokens")) is not None:
            outcome.output_tokens = usage["output_tokens"]
    return False


ENDPOINTS = {
    "/v1/messages": Endpoint("anthropic", "chat", messages_request, message_json, message_event, error_body),
}
