"""Anthropic-compatible endpoint: POST /v1/messages (plain, streamed, tools, prompt caching).

Usage follows the real API: `input_tokens` excludes cache reads and cache writes, which are
reported apart (`cache_read_input_tokens`, `cache_creation_input_tokens`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tokentrace.simulate import faults, judge
from tokentrace.simulate.models import profile
from tokentrace.simulate.state import ProviderState, pause
from tokentrace.simulate.tokens import answer_length, answer_words, content_text, count_text, rng_for

_MIN_CACHEABLE = 1024  # the shortest prefix Anthropic caches (Sonnet, Opus)
_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error(status: int, message: str = "", retry_after_ms: int = 20) -> Response:
    kind = _ERRORS.get(status, "api_error")
    headers = {"retry-after-ms": str(retry_after_ms)} if status in (429, 529) else None
    body = {"type": "error", "error": {"type": kind, "message": message or kind.replace("_", " ")}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _block_tokens(block: dict[str, Any]) -> int:
    return count_text(content_text([block]))


def _prompt(body: dict[str, Any]) -> tuple[int, list[tuple[int, list[Any]]]]:
    """(total input tokens, [(tokens up to a cache breakpoint, the prefix it closes)] in order)."""
    total, prefix, breakpoints = 3, [], []
    pieces: list[tuple[int, dict[str, Any]]] = []
    if body.get("tools"):
        pieces.append((count_text(orjson.dumps(body["tools"]).decode()), body["tools"][-1]))
    for block in _blocks(body.get("system")):
        pieces.append((_block_tokens(block), block))
    for message in body.get("messages", []):
        blocks = _blocks(message.get("content"))
        for i, block in enumerate(blocks):
            pieces.append((_block_tokens(block) + (4 if i == 0 else 0), block))
    for tokens, block in pieces:
        total += tokens
        prefix.append(block)
        if isinstance(block, dict) and block.get("cache_control"):
            breakpoints.append((total, list(prefix)))
    return total, breakpoints


def _cache(state: ProviderState, model: str, breakpoints: list[tuple[int, list[Any]]]) -> tuple[int, int]:
    """(cache read, cache write) tokens, as Anthropic counts them: the longest prefix an
    earlier request cached is read; the rest, up to the last breakpoint, is written."""
    read = written = 0
    for tokens, prefix in breakpoints:
        if tokens < _MIN_CACHEABLE:
            continue
        if state.seen_before(("anthropic", model, prefix)):
            read = tokens
        written = tokens
    return read, max(written - read, 0)


def _tool_use(rng, tools: list[dict[str, Any]], choice: Any, messages: list[Any]) -> dict[str, Any] | None:
    """The tool the simulated model uses; none once a tool result is in the conversation."""
    if not tools or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    answered = any(
        block.get("type") == "tool_result"
        for message in messages
        if isinstance(message, dict)
        for block in _blocks(message.get("content"))
    )
    if answered:
        return None
    tool = tools[0]
    if isinstance(choice, dict) and choice.get("type") == "tool":
        tool = next((t for t in tools if t.get("name") == choice.get("name")), tool)
    schema = tool.get("input_schema") or {}
    arguments = {name: f"{name}-{rng.randint(1000, 9999)}" for name in schema.get("required", [])}
    return {
        "type": "tool_use",
        "id": f"toolu_{rng.getrandbits(64):016x}",
        "name": tool.get("name", "tool"),
        "input": arguments,
    }


async def messages(request: Request) -> Response:
    state: ProviderState = request.app.state.sim
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return error(400, "request body is not valid JSON")
    if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
        return error(400, "model and messages are required")
    if not isinstance(body.get("max_tokens"), int):
        return error(400, "max_tokens: Field required")
    directives = faults.parse(request.headers.get("x-simulate"))
    model = body["model"]
    forced = state.forced_error(directives, raw)
    if forced is not None:
        state.record("messages", model, forced)
        return error(forced, retry_after_ms=directives.retry_after_ms)
    spec = profile(model)
    total, breakpoints = _prompt(body)
    if total > spec.context_window:
        state.record("messages", model, 400)
        return error(400, f"prompt is too long: {total} tokens > {spec.context_window} maximum")
    cache_read, cache_write = _cache(state, model, breakpoints)
    rng = rng_for(state.seed, model, body.get("system"), body["messages"])
    tool = _tool_use(rng, body.get("tools") or [], body.get("tool_choice"), body["messages"])
    if tool:
        output, truncated, words = count_text(orjson.dumps(tool["input"]).decode()) + 10, False, []
    else:
        output, truncated = answer_length(rng, body["max_tokens"], high=directives.max_output or 160)
        words = answer_words(rng, output, content_text(body.get("system")))
    stop = "tool_use" if tool else ("max_tokens" if truncated else "end_turn")
    if directives.refuse and not tool:
        words = ["I", "can't", "help", "with", "that."]
        output, stop = count_text(" ".join(words)), "refusal"
    judged = (
        None
        if tool
        else judge.verdict([{"role": "system", "content": body.get("system")}, *body["messages"]])
    )
    if judged is not None:  # an evaluator's prompt: a deterministic verdict (simulate/judge.py)
        words, output, stop = judged.split(" "), count_text(judged), "end_turn"
    usage = {
        "input_tokens": total - cache_read - cache_write,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output,
        # Anthropic answers standard unless the organization has priority capacity and asked
        # for it (`service_tier: auto`); the simulation grants priority to `auto` requests.
        "service_tier": "priority" if body.get("service_tier") == "auto" else "standard",
    }
    ident = state.response_id("msg_")
    stream = bool(body.get("stream"))
    state.record("messages", model, 200, id=ident, usage=usage, stream=stream, tool=bool(tool), reported=True)
    content = [tool] if tool else [{"type": "text", "text": " ".join(words)}]
    message = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    first_delay = state.first_token_delay_s(directives, spec, total)
    token_delay = state.token_delay_s(directives, spec)
    if not stream:
        await pause(first_delay + token_delay * output)
        return Response(orjson.dumps(message), media_type="application/json")

    def sse(kind: str, **fields: Any) -> bytes:
        return f"event: {kind}\n".encode() + b"data: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"

    async def events() -> AsyncIterator[bytes]:
        start_usage = {**usage, "output_tokens": 1}
        yield sse(
            "message_start", message={**message, "content": [], "stop_reason": None, "usage": start_usage}
        )
        await pause(first_delay)
        if tool:
            yield sse("content_block_start", index=0, content_block={**tool, "input": {}})
            arguments = orjson.dumps(tool["input"]).decode()
            for i in range(0, len(arguments), 8):
                yield sse(
                    "content_block_delta",
                    index=0,
                    delta={"type": "input_json_delta", "partial_json": arguments[i : i + 8]},
                )
        else:
            yield sse("content_block_start", index=0, content_block={"type": "text", "text": ""})
            yield sse("ping")
            for i, word in enumerate(words):
                if i:
                    await pause(token_delay)
                yield sse(
                    "content_block_delta",
                    index=0,
                    delta={"type": "text_delta", "text": word if i == 0 else " " + word},
                )
        yield sse("content_block_stop", index=0)
        yield sse(
            "message_delta",
            delta={"stop_reason": stop, "stop_sequence": None},
            usage={"output_tokens": output},
        )
        yield sse("message_stop")

    return StreamingResponse(events(), media_type="text/event-stream")


routes = [Route("/v1/messages", messages, methods=["POST"])]
