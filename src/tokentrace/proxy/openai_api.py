"""The OpenAI API as the gateway sees it: chat completions, Responses, embeddings."""

from __future__ import annotations

from typing import Any

import orjson

from tokentrace.proxy.exchange import (
    BadRequest,
    CallRequest,
    Endpoint,
    Outcome,
    integer,
    no_events,
    number,
    require_model,
)


def error_body(status: int, kind: str, message: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": kind}})


def _sampling(body: dict[str, Any], max_tokens: int | None, stream: bool) -> dict[str, Any]:
    values = {
        "gen_ai.request.temperature": number(body.get("temperature")),
        "gen_ai.request.top_p": number(body.get("top_p")),
        "gen_ai.request.seed": integer(body.get("seed")),
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.stream": stream,
        "openai.request.service_tier": tier if isinstance(tier := body.get("service_tier"), str) else None,
    }
    return {key: value for key, value in values.items() if value is not None}


def _wants_json(fmt: Any) -> bool:
    return isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")


def _usage(outcome: Outcome, usage: Any, inp: str, out: str, in_details: str, out_details: str) -> None:
    if not isinstance(usage, dict):
        return
    outcome.input_tokens = integer(usage.get(inp))
    outcome.output_tokens = integer(usage.get(out))
    details = usage.get(in_details)
    if isinstance(details, dict):
        outcome.cache_read_tokens = integer(details.get("cached_tokens"))
        outcome.cache_write_tokens = integer(details.get("cache_write_tokens"))
        outcome.input_audio_tokens = integer(details.get("audio_tokens")) or None
    details = usage.get(out_details)
    if isinstance(details, dict):
        outcome.reasoning_tokens = integer(details.get("reasoning_tokens"))
        outcome.output_audio_tokens = integer(details.get("audio_tokens")) or None


def _identity(outcome: Outcome, data: dict[str, Any]) -> None:
    if isinstance(data.get("model"), str):
        outcome.response_model = data["model"]
    if isinstance(data.get("id"), str):
        outcome.response_id = data["id"]
    if isinstance(data.get("service_tier"), str):
        outcome.service_tier = data["service_tier"]


# --- chat completions --------------------------------------------------------------------
def chat_request(body: dict[str, Any]) -> CallRequest:
    model = require_model(body)
    if not isinstance(body.get("messages"), list):
        raise BadRequest("the request must have a list of messages")
    stream = body.get("stream") is True
    max_tokens = integer(body.get("max_completion_tokens")) or integer(body.get("max_tokens"))
    attributes = _sampling(body, max_tokens, stream)
    if _wants_json(body.get("response_format")):
        attributes["gen_ai.output.type"] = "json"
    call = CallRequest(model, stream, max_tokens, attributes)
    options = body.get("stream_options")
    if stream and not (isinstance(options, dict) and options.get("include_usage") is True):
        # Usage in a stream comes only when asked for: ask, and keep that extra event from
        # the client, which did not ask for it.
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        call.hide_usage_event = True
    return call


def chat_json(outcome: Outcome, data: dict[str, Any]) -> None:
    _identity(outcome, data)
    for choice in data.get("choices") or ():
        if isinstance(choice, dict):
            if isinstance(choice.get("finish_reason"), str):
                outcome.finish_reasons.append(choice["finish_reason"])
            message = choice.get("message")
            if isinstance(message, dict) and message.get("refusal"):
                outcome.refusal = True
    _usage(
        outcome,
        data.get("usage"),
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    )


def chat_event(outcome: Outcome, data: dict[str, Any], now_ns: int) -> bool:
    _identity(outcome, data)
    choices = data.get("choices")
    for choice in choices or ():
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict) and (
            delta.get("content") or delta.get("tool_calls") or delta.get("refusal")
        ):
            outcome.output_events += 1
            if outcome.first_token_ns is None:
                outcome.first_token_ns = now_ns
            if delta.get("refusal"):
                outcome.refusal = True
        if isinstance(choice.get("finish_reason"), str):
            outcome.finish_reasons.append(choice["finish_reason"])
    usage = data.get("usage")
    if isinstance(usage, dict):
        _usage(
            outcome,
            usage,
            "prompt_tokens",
            "completion_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
        )
        return not choices  # the usage-only event
    return False


# --- responses ---------------------------------------------------------------------------
def responses_request(body: dict[str, Any]) -> CallRequest:
    model = require_model(body)
    stream = body.get("stream") is True
    max_tokens = integer(body.get("max_output_tokens"))
    attributes = _sampling(body, max_tokens, stream)
    text = body.get("text")
    if isinstance(text, dict) and _wants_json(text.get("format")):
        attributes["gen_ai.output.type"] = "json"
    return CallRequest(model, stream, max_tokens, attributes)


def responses_json(outcome: Outcome, data: dict[str, Any]) -> None:
    _identity(outcome, data)
    if isinstance(data.get("status"), str):
        outcome.finish_reasons = [data["status"]]
    _usage(
        outcome,
        data.get("usage"),
        "input_tokens",
        "output_tokens",
        "input_tokens_details",
        "output_tokens_details",
    )
    for item in data.get("output") or ():
        if isinstance(item, dict) and item.get("type") == "message":
            outcome.refusal = outcome.refusal or any(
                isinstance(part, dict) and part.get("type") == "refusal" for part in item.get("content") or ()
            )


def responses_event(outcome: Outcome, data: dict[str, Any], now_ns: int) -> bool:
    kind = data.get("type")
    if kind in (
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.refusal.delta",
    ):
        outcome.output_events += 1
        if outcome.first_token_ns is None:
            outcome.first_token_ns = now_ns
    elif kind in ("response.completed", "response.incomplete", "response.failed") and isinstance(
        data.get("response"), dict
    ):
        responses_json(outcome, data["response"])
    return False


# --- embeddings --------------------------------------------------------------------------
def embeddings_request(body: dict[str, Any]) -> CallRequest:
    model = require_model(body)
    if "input" not in body:
        raise BadRequest("the request must have an input")
    return CallRequest(model, False, None, {})


def embeddings_json(outcome: Outcome, data: dict[str, Any]) -> None:
    _identity(outcome, data)
    usage = data.get("usage")
    if isinstance(usage, dict):
        outcome.input_tokens = integer(usage.get("prompt_tokens"))


ENDPOINTS = {
    "/v1/chat/completions": Endpoint("openai", "chat", chat_request, chat_json, chat_event, error_body),
    "/v1/responses": Endpoint(
        "openai", "chat", responses_request, responses_json, responses_event, error_body
    ),
    "/v1/embeddings": Endpoint(
        "openai", "embeddings", embeddings_request, embeddings_json, no_events, error_body
    ),
}
