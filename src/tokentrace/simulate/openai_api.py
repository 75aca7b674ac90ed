"""OpenAI-compatible endpoints: chat completions, embeddings, responses, models."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tokentrace.simulate import faults, judge
from tokentrace.simulate.models import profile, reasoning_effort_error, reasoning_tokens
from tokentrace.simulate.state import ProviderState, pause
from tokentrace.simulate.tokens import (
    answer_length,
    answer_words,
    content_text,
    count_audio,
    count_message,
    count_text,
    count_tools,
    generate_words,
    rng_for,
)

#: Like the real API, an alias answers with a dated snapshot.
RESPONSE_MODELS = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", None, "Not found."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error(
    status: int, message: str | None = None, code: str | None = None, retry_after_ms: int = 20
) -> Response:
    kind, default_code, default_message = _ERRORS.get(status, ("server_error", None, "Error."))
    headers = {}
    if status == 429:
        headers = {"retry-after-ms": str(retry_after_ms), "retry-after": str(max(retry_after_ms // 1000, 0))}
    body = {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": None,
            "code": code or default_code,
        }
    }
    return _json(body, status, headers)


async def _body(request: Request) -> tuple[bytes, dict[str, Any] | None]:
    raw = await request.body()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, None
    return raw, parsed if isinstance(parsed, dict) else None


def _sse(event: dict[str, Any], name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + orjson.dumps(event) + b"\n\n"


REFUSAL = "I'm sorry, but I can't help with that."


def _answered(messages: list[Any]) -> bool:
    """A tool result is in the conversation (chat `tool` messages, Responses `function_call_output`
    items): the simulated model then answers instead of calling a tool again, as an agent expects."""
    return any(
        isinstance(m, dict)
        and (m.get("role") in ("tool", "function") or m.get("type") == "function_call_output")
        for m in messages
    )


def _tool_call(rng, tools: list[dict[str, Any]], choice: Any, messages: list[Any]) -> dict[str, Any] | None:
    """The tool the simulated model calls, with arguments built from the schema's required fields;
    none once a tool result is present."""
    if not tools or choice == "none" or _answered(messages):
        return None
    functions = [t.get("function", t) for t in tools]
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name") or choice.get("name")
        functions = [f for f in functions if f.get("name") == wanted] or functions
    function = functions[0]
    schema = function.get("parameters") or {}
    arguments = {}
    for name in schema.get("required", []):
        kind = schema.get("properties", {}).get(name, {}).get("type")
        arguments[name] = {"integer": rng.randint(1, 99), "number": 1.5, "boolean": True}.get(
            kind, f"{name}-{rng.randint(1000, 9999)}"
        )
    return {
        "id": f"call_{rng.getrandbits(64):016x}",
        "name": function.get("name", "tool"),
        "arguments": orjson.dumps(arguments).decode(),
    }


def _prompt_tokens(messages: list[dict[str, Any]], tools: Any) -> int:
    return 3 + sum(count_message(m) for m in messages) + count_tools(tools)


def _cached(state: ProviderState, model: str, messages: list[dict[str, Any]], tools: Any) -> int:
    """Automatic prompt caching: a repeated prefix of ≥ 1024 tokens is read in 128-token blocks."""
    prefix = messages[:-1]
    prefix_tokens = _prompt_tokens(prefix, tools) if prefix else 0
    if prefix_tokens < 1024:
        return 0
    if not state.seen_before(("openai", model, prefix, tools)):
        return 0
    return prefix_tokens // 128 * 128


def served_tier(requested: Any) -> str:
    """The tier OpenAI answers with: the one asked for (flex, priority, scale), else default
    (what `auto` and `default` get on a project without scale tier credits)."""
    return requested if requested in ("flex", "priority", "scale") else "default"


async def chat_completions(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    raw, body = await _body(request)
    if body is None or not isinstance(body.get("messages"), list) or not body.get("model"):
        return error(400, "you must provide a model and a list of messages")
    directives = faults.parse(request.headers.get("x-simulate"))
    model, messages = body["model"], body["messages"]
    forced = state.forced_error(directives, raw)
    if forced is not None:
        state.record("chat.completions", model, forced)
        return error(forced, retry_after_ms=directives.retry_after_ms)
    spec = profile(model)
    effort = body.get("reasoning_effort")
    refused = reasoning_effort_error(spec, effort, "reasoning_effort")
    if refused is not None:
        state.record("chat.completions", model, 400)
        return error(400, refused, code="unsupported_parameter")
    prompt = _prompt_tokens(messages, body.get("tools"))
    if prompt > spec.context_window:
        state.record("chat.completions", model, 400)
        return error(
            400,
            f"This model's maximum context length is {spec.context_window} tokens. However, "
            f"your messages resulted in {prompt} tokens. Please reduce the length of the messages.",
            code="context_length_exceeded",
        )
    cached = _cached(state, model, messages, body.get("tools"))
    rng = rng_for(state.seed, model, messages)
    call = _tool_call(rng, body.get("tools") or [], body.get("tool_choice"), messages)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if call:
        words, truncated = [], False
        output = count_text(call["name"]) + count_text(call["arguments"])
    else:
        output, truncated = answer_length(rng, limit, high=directives.max_output or 160)
        instructions = " ".join(
            content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
        )
        words = answer_words(rng, output, instructions)
        if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            text = orjson.dumps({"answer": " ".join(words)}).decode()
            words = (text[:-2] if directives.malformed_json or truncated else text).split(" ")
    refusal = REFUSAL if directives.refuse and not call else None
    if refusal:
        words, output, truncated = [], count_text(REFUSAL), False
    judged = None if call else judge.verdict(messages)
    if judged is not None:  # an evaluator's prompt: a deterministic verdict (simulate/judge.py)
        words, output, truncated, refusal = judged.split(" "), count_text(judged), False, None
    reasoning = reasoning_tokens(rng, spec, effort)
    finish = "tool_calls" if call else ("length" if truncated else "stop")
    # Audio heard is part of the prompt; an answer spoken (modalities: audio) takes ~3 audio
    # tokens per word of its transcript, on top of the transcript's text tokens.
    heard = count_audio(messages)
    prompt += heard
    spoken = 3 * output if "audio" in (body.get("modalities") or ()) and not call and not refusal else 0
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": output + reasoning + spoken,
        "total_tokens": prompt + output + reasoning + spoken,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": heard},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": spoken,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    ident = state.response_id("chatcmpl-")
    served = RESPONSE_MODELS.get(model, model)
    stream = bool(body.get("stream"))
    reported = not stream or bool((body.get("stream_options") or {}).get("include_usage"))
    state.record(
        "chat.completions",
        model,
        200,
        id=ident,
        usage=usage,
        stream=stream,
        tool=bool(call),
        reported=reported,
    )
    created = int(time.time())
    first_delay = state.first_token_delay_s(directives, spec, prompt)
    token_delay = state.token_delay_s(directives, spec)
    tool_calls = (
        [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
        ]
        if call
        else None
    )
    tier = served_tier(body.get("service_tier"))
    if not body.get("stream"):
        await pause(first_delay + token_delay * output)
        text = None if call or refusal else " ".join(words)
        message = {"role": "assistant", "content": text, "refusal": refusal}
        if tool_calls:
            message["tool_calls"] = tool_calls
        if spoken:  # the answer as speech: its transcript, and a few bytes standing for the audio
            audio = {"id": f"audio_{ident}", "data": "UklGRg==", "expires_at": created + 3600}
            message |= {"content": None, "audio": audio | {"transcript": text}}
        return _json(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": served,
                "system_fingerprint": "fp_simulated",
                "service_tier": tier,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage,
            }
        )

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    async def chunks() -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
            event = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": served,
                "system_fingerprint": "fp_simulated",
                "service_tier": tier,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
            }
            if include_usage:
                event["usage"] = None
            return _sse(event)

        await pause(first_delay)
        yield chunk({"role": "assistant", "content": "" if not call else None, "refusal": None})
        if refusal:
            yield chunk({"refusal": refusal})
        elif call:
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": ""},
                        }
                    ]
                }
            )
            arguments = call["arguments"]
            for i in range(0, len(arguments), 8):
                await pause(token_delay)
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 8]}}]})
        else:
            for i, word in enumerate(words):
                if i:
                    await pause(token_delay)
                yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, finish)
        if include_usage:
            yield _sse(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": served,
                    "system_fingerprint": "fp_simulated",
                    "service_tier": tier,
                    "choices": [],
                    "usage": usage,
                }
            )
        yield b"data: [DONE]\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


async def embeddings(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    raw, body = await _body(request)
    if body is None or "input" not in body or not body.get("model"):
        return error(400, "you must provide a model and an input")
    directives = faults.parse(request.headers.get("x-simulate"))
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    model = body["model"]
    forced = state.forced_error(directives, raw)
    if forced is not None:
        state.record("embeddings", model, forced)
        return error(forced, retry_after_ms=directives.retry_after_ms)
    dims = int(body.get("dimensions") or profile(model).embedding_dims or 1536)
    data, tokens = [], 0
    for i, item in enumerate(inputs):
        tokens += len(item) if isinstance(item, list) else count_text(str(item))
        rng = rng_for(state.seed, model, item)
        vector = [rng.uniform(-1, 1) for _ in range(dims)]
        if body.get("encoding_format") == "base64":
            embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        else:
            embedding = vector
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    await pause(state.first_token_delay_s(directives, profile(model), tokens))
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    state.record("embeddings", model, 200, usage=usage, stream=False, tool=False, reported=True)
    return _json(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": usage,
        }
    )


def _response_input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("input")
    messages = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
    elif isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                messages.append(
                    {"role": item.get("role", "user"), "content": content_text(item.get("content"))}
                )
    return messages


def _response_tools(tools: Any) -> list[dict[str, Any]]:
    """The function tools of a Responses request (flat: name and parameters on the tool)."""
    return [t for t in tools or [] if isinstance(t, dict) and t.get("type", "function") == "function"]


async def responses(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    raw, body = await _body(request)
    if body is None or not body.get("model") or body.get("input") is None:
        return error(400, "you must provide a model and an input")
    directives = faults.parse(request.headers.get("x-simulate"))
    model = body["model"]
    forced = state.forced_error(directives, raw)
    if forced is not None:
        state.record("responses", model, forced)
        return error(forced, retry_after_ms=directives.retry_after_ms)
    spec = profile(model)
    options = body.get("reasoning") or {}
    if not isinstance(options, dict):
        state.record("responses", model, 400)
        return error(400, "Invalid type for 'reasoning': expected an object.", code="invalid_type")
    effort = options.get("effort")
    refused = reasoning_effort_error(spec, effort, "reasoning.effort")
    if refused is not None:
        state.record("responses", model, 400)
        return error(400, refused, code="unsupported_parameter")
    messages = _response_input_messages(body)
    prompt = _prompt_tokens(messages, body.get("tools"))
    if prompt > spec.context_window:
        state.record("responses", model, 400)
        return error(
            400,
            f"Your input exceeds the context window of this model ({spec.context_window} tokens).",
            code="context_length_exceeded",
        )
    cached = _cached(state, model, messages, body.get("tools"))
    rng = rng_for(state.seed, "responses", model, messages)
    items = body["input"] if isinstance(body["input"], list) else []
    call = _tool_call(rng, _response_tools(body.get("tools")), body.get("tool_choice"), items)
    if call:
        words, truncated = [], False
        output = count_text(call["name"]) + count_text(call["arguments"])
    else:
        output, truncated = answer_length(
            rng, body.get("max_output_tokens"), high=directives.max_output or 160
        )
        words = generate_words(rng, output)
    reasoning = reasoning_tokens(rng, spec, effort)
    text = " ".join(words)
    ident = state.response_id("resp_")
    message_id = state.response_id("fc_" if call else "msg_")
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output + reasoning,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output + reasoning,
    }
    stream = bool(body.get("stream"))
    state.record(
        "responses", model, 200, id=ident, usage=usage, stream=stream, tool=bool(call), reported=True
    )
    function_call = (
        {
            "type": "function_call",
            "id": message_id,
            "call_id": call["id"],
            "name": call["name"],
            "arguments": call["arguments"],
            "status": "completed",
        }
        if call
        else None
    )

    def output_items(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if function_call:
            return [function_call]
        if not content:
            return []
        return [
            {
                "type": "message",
                "id": message_id,
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        ]

    def response(status: str, content: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "response",
            "created_at": time.time(),
            "status": status,
            "model": RESPONSE_MODELS.get(model, model),
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if truncated and status != "in_progress"
            else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": {},
            "parallel_tool_calls": True,
            "service_tier": served_tier(body.get("service_tier")),
            "temperature": body.get("temperature", 1.0),
            "tool_choice": "auto",
            "tools": [],
            "top_p": body.get("top_p", 1.0),
            "output": output_items(content) if status != "in_progress" else [],
            "usage": usage if with_usage else None,
        }

    final_status = "incomplete" if truncated else "completed"
    part = {"type": "output_text", "text": text, "annotations": []}
    first_delay = state.first_token_delay_s(directives, spec, prompt)
    token_delay = state.token_delay_s(directives, spec)
    if not stream:
        await pause(first_delay + token_delay * output)
        return _json(response(final_status, [part], True))

    async def events() -> AsyncIterator[bytes]:
        sequence = 0

        def event(kind: str, **fields: Any) -> bytes:
            nonlocal sequence
            sequence += 1
            return _sse({"type": kind, "sequence_number": sequence, **fields}, kind)

        yield event("response.created", response=response("in_progress", [], False))
        await pause(first_delay)
        if function_call:
            yield event(
                "response.output_item.added",
                output_index=0,
                item={**function_call, "arguments": "", "status": "in_progress"},
            )
            arguments = function_call["arguments"]
            for i in range(0, len(arguments), 8):
                await pause(token_delay)
                yield event(
                    "response.function_call_arguments.delta",
                    item_id=message_id,
                    output_index=0,
                    delta=arguments[i : i + 8],
                )
            yield event(
                "response.function_call_arguments.done",
                item_id=message_id,
                output_index=0,
                arguments=arguments,
            )
            yield event("response.output_item.done", output_index=0, item=function_call)
            yield event(f"response.{final_status}", response=response(final_status, [], True))
            return
        item = {
            "type": "message",
            "id": message_id,
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        yield event("response.output_item.added", output_index=0, item=item)
        yield event(
            "response.content_part.added",
            item_id=message_id,
            output_index=0,
            content_index=0,
            part={"type": "output_text", "text": "", "annotations": []},
        )
        for i, word in enumerate(words):
            if i:
                await pause(token_delay)
            yield event(
                "response.output_text.delta",
                item_id=message_id,
                output_index=0,
                content_index=0,
                delta=word if i == 0 else " " + word,
                logprobs=[],
            )
        yield event(
            "response.output_text.done",
            item_id=message_id,
            output_index=0,
            content_index=0,
            text=text,
            logprobs=[],
        )
        yield event(
            "response.content_part.done", item_id=message_id, output_index=0, content_index=0, part=part
        )
        yield event(
            "response.output_item.done",
            output_index=0,
            item={**item, "status": "completed", "content": [part]},
        )
        yield event(f"response.{final_status}", response=response(final_status, [part], True))

    return StreamingResponse(events(), media_type="text/event-stream")


async def models(request: Request) -> Response:
    names = [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-nano",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ]
    return _json(
        {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": 1700000000, "owned_by": "simulated"} for n in names
            ],
        }
    )


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/responses", responses, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
]
