"""Instrument the official `anthropic` SDK: messages.create (plain and stream=True) and the
messages.stream() helper, sync and async; every HTTP attempt of its retry loop is recorded;
the results of message batches as the app reads them (batches.py).

anthropic ≥ 2 has its own OTel span per call; with tokentrace's instrumentation on, that span
would count the same call twice, so `instrument()` turns it off for clients made afterwards
(unless ANTHROPIC_OPEN_TELEMETRY is set explicitly).
"""

from __future__ import annotations

import os
from typing import Any

import wrapt
from opentelemetry.context import Context

from tokentrace import vocab
from tokentrace.sdk import content
from tokentrace.sdk.content import text_part, tool_call_part, tool_response_part
from tokentrace.sdk.instrumentors import batches
from tokentrace.sdk.instrumentors.calls import (
    Call,
    parsed_response,
    record_response,
    send_async_wrapper,
    send_wrapper,
    start_call,
)
from tokentrace.sdk.instrumentors.streams import AsyncTracedStream, TracedStream
from tokentrace.sdk.instrumentors.wrappers import create_wrappers

_installed = False


def _request(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "gen_ai.request.temperature": kwargs.get("temperature"),
        "gen_ai.request.top_p": kwargs.get("top_p"),
        "gen_ai.request.max_tokens": kwargs.get("max_tokens"),
        "gen_ai.request.stream": kwargs.get("stream") is True,
    }


def _field(block: Any, name: str) -> Any:
    return block.get(name) if isinstance(block, dict) else getattr(block, name, None)


def _parts(value: Any) -> list[dict[str, Any]]:
    """Anthropic content (a string or content blocks) in the conventions' parts format; media
    is recorded by kind only."""
    if isinstance(value, str):
        return [text_part(value)]
    parts = []
    for block in value if isinstance(value, list | tuple) else ():
        kind = _field(block, "type")
        if kind == "text":
            parts.append(text_part(_field(block, "text") or ""))
        elif kind == "tool_use":
            parts.append(tool_call_part(_field(block, "id"), _field(block, "name"), _field(block, "input")))
        elif kind == "tool_result":
            result = _field(block, "content")
            if isinstance(result, list):
                result = "".join(p["content"] for p in _parts(result) if p.get("type") == "text")
            parts.append(tool_response_part(_field(block, "tool_use_id"), result))
        elif kind:
            parts.append({"type": kind})
    return parts


def _record_request(call: Call, kwargs: dict[str, Any]) -> None:
    if not content.capturing():
        return
    inputs = []
    for message in kwargs.get("messages") or ():
        role = _field(message, "role")
        parts = _parts(_field(message, "content"))
        # A user turn that only returns tool results is the tool speaking, as in the conventions.
        if role == "user" and parts and all(p["type"] == "tool_call_response" for p in parts):
            role = "tool"
        inputs.append({"role": role, "parts": parts})
    system = kwargs.get("system")
    content.record(call.span, system=_parts(system) if system else None, inputs=inputs)


def _record_response(call: Call, blocks: Any, stop_reason: Any) -> None:
    if content.capturing():
        outputs = [{"role": "assistant", "parts": _parts(blocks), "finish_reason": stop_reason}]
        content.record(call.span, outputs=outputs)


def _usage(usage: Any, output_tokens: int | None = None) -> dict[str, Any]:
    """OTel meaning: input tokens include cache reads and writes (Anthropic reports them apart)."""
    if usage is None:
        return {}
    raw_input = getattr(usage, "input_tokens", None)
    read = getattr(usage, "cache_read_input_tokens", None)
    written = getattr(usage, "cache_creation_input_tokens", None)
    output = output_tokens if output_tokens is not None else getattr(usage, "output_tokens", None)
    values = {
        "gen_ai.usage.input_tokens": raw_input + (read or 0) + (written or 0)
        if isinstance(raw_input, int)
        else None,
        "gen_ai.usage.cache_read.input_tokens": read,
        "gen_ai.usage.cache_creation.input_tokens": written,
        "gen_ai.usage.output_tokens": output,
    }
    counts: dict[str, Any] = {key: value for key, value in values.items() if isinstance(value, int)}
    tier = getattr(usage, "service_tier", None)  # standard, priority or batch: what it is billed at
    if isinstance(tier, str):
        counts["anthropic.response.service_tier"] = tier
    return counts


def _reasons(stop_reason: Any) -> list[str] | None:
    return [stop_reason] if isinstance(stop_reason, str) else None


def _response(call: Call, result: Any) -> None:
    message = parsed_response(result)
    stop_reason = getattr(message, "stop_reason", None)
    record_response(
        call.span,
        getattr(message, "model", None),
        getattr(message, "id", None),
        _reasons(stop_reason),
        _usage(getattr(message, "usage", None)),
    )
    _record_response(call, getattr(message, "content", None), stop_reason)


class _EventStream:
    """Raw stream events: usage starts in message_start, output tokens end in message_delta;
    content blocks are gathered from their start and delta events when capture is on."""

    def __init__(self, call: Call) -> None:
        self.start: Any = None
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None
        self.gather = content.capturing()
        self.blocks: dict[int, dict[str, Any]] = {}

    def _block(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "content_block_start":
            block = event.content_block
            self.blocks[event.index] = {
                "type": block.type,
                "text": [getattr(block, "text", "") or ""],
                "id": getattr(block, "id", None),
                "name": getattr(block, "name", None),
            }
        elif kind == "content_block_delta" and event.index in self.blocks:
            delta = event.delta
            piece = getattr(delta, "text", None) or getattr(delta, "partial_json", None)
            if piece:
                self.blocks[event.index]["text"].append(piece)

    def item(self, call: Call, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "message_start":
            self.start = event.message
        elif kind == "message_delta":
            self.output_tokens = getattr(event.usage, "output_tokens", self.output_tokens)
            self.stop_reason = getattr(event.delta, "stop_reason", None) or self.stop_reason
        elif self.gather:
            self._block(event)

    def finish(self, call: Call) -> None:
        if self.start is None:
            return
        usage = _usage(self.start.usage, self.output_tokens)
        record_response(call.span, self.start.model, self.start.id, _reasons(self.stop_reason), usage)
        if self.gather:
            blocks = []
            for index in sorted(self.blocks):
                block = self.blocks[index]
                text = "".join(block["text"])
                if block["type"] == "tool_use":
                    blocks.append(
                        {"type": "tool_use", "id": block["id"], "name": block["name"], "input": text}
                    )
                else:
                    blocks.append({"type": block["type"], "text": text})
            _record_response(call, blocks, self.stop_reason)


def _start(kwargs: dict[str, Any], stream: bool = False, ctx: Context | None = None) -> Call:
    attributes = _request(kwargs)
    if stream:
        attributes["gen_ai.request.stream"] = True
    call = start_call("chat", "anthropic", kwargs.get("model"), attributes, ctx)
    _record_request(call, kwargs)
    return call


_create, _create_async = create_wrappers(
    lambda instance, kwargs, ctx: _start(kwargs, ctx=ctx), _response, _EventStream
)


def _stream_helper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    # messages.stream() sends nothing yet: the request goes out when the manager is entered.
    manager = wrapped(*args, **kwargs)
    manager._tokentrace_call = _start(kwargs, stream=True)
    return manager


def _enter(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    call: Call | None = getattr(instance, "_tokentrace_call", None)
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        stream = wrapped(*args, **kwargs)
    # MessageStream reads its raw stream lazily, so the traced one is the one it iterates.
    stream._raw_stream = TracedStream(stream._raw_stream, call, _EventStream(call))
    return stream


async def _aenter(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    call: Call | None = getattr(instance, "_tokentrace_call", None)
    if call is None:
        return await wrapped(*args, **kwargs)
    with call:
        stream = await wrapped(*args, **kwargs)
    stream._raw_stream = AsyncTracedStream(stream._raw_stream, call, _EventStream(call))
    return stream


# --- message batches (sdk/instrumentors/batches.py) ------------------------------------------
def _batch_result(batch_id: Any, item: Any) -> None:
    """One result of a batch, as the app reads it, a span; canceled and expired ones never ran."""
    result = getattr(item, "result", None)
    kind = getattr(result, "type", None)
    custom_id = getattr(item, "custom_id", None)
    if not isinstance(batch_id, str) or not isinstance(custom_id, str) or batches.suppressed():
        return
    if kind == "succeeded":
        message = result.message

        def fill(span: Any) -> Any:
            usage = _usage(getattr(message, "usage", None))
            record_response(span, message.model, message.id, _reasons(message.stop_reason), usage)
            return message.model

        start = batches.book.ends.get(batch_id) or batches.started(None)
        batches.record("anthropic", "chat", batch_id, custom_id, start, fill)
    elif kind == "errored":
        error = getattr(getattr(result, "error", None), "error", None)
        failure = vocab.error_type(getattr(error, "type", None), getattr(error, "message", None))
        start = batches.book.ends.get(batch_id) or batches.started(None)
        batches.record("anthropic", "chat", batch_id, custom_id, start, None, failure)


class _Results(wrapt.ObjectProxy):
    """A batch's results (the SDK's JSONL decoder) that records each result as it is read."""

    def __init__(self, decoder: Any, batch_id: Any) -> None:
        super().__init__(decoder)
        self._self_batch = batch_id

    def __iter__(self) -> Any:
        for item in self.__wrapped__:
            _batch_result(self._self_batch, item)
            yield item

    async def __aiter__(self) -> Any:
        async for item in self.__wrapped__:
            _batch_result(self._self_batch, item)
            yield item


def _batch_id(args: tuple, kwargs: dict) -> Any:
    return kwargs.get("message_batch_id", args[0] if args else None)


_batch_created = batches.noting(
    lambda result, args, kwargs: batches.book.created(
        getattr(parsed_response(result), "id", None), "/v1/messages"
    )
)
_batch_looked_up = batches.noting(lambda result, args, kwargs: batches.book.ended(parsed_response(result)))


def _batch_results(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _Results(wrapped(*args, **kwargs), _batch_id(args, kwargs))


async def _batch_results_async(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _Results(await wrapped(*args, **kwargs), _batch_id(args, kwargs))


def instrument() -> None:
    """Patch the anthropic SDK classes once."""
    global _installed
    if _installed:
        return
    os.environ.setdefault("ANTHROPIC_OPEN_TELEMETRY", "false")
    messages = "anthropic.resources.messages.messages"
    wrapt.wrap_function_wrapper(messages, "Messages.create", _create)
    wrapt.wrap_function_wrapper(messages, "AsyncMessages.create", _create_async)
    wrapt.wrap_function_wrapper(messages, "Messages.stream", _stream_helper)
    wrapt.wrap_function_wrapper(messages, "AsyncMessages.stream", _stream_helper)
    streaming = "anthropic.lib.streaming._messages"
    wrapt.wrap_function_wrapper(streaming, "MessageStreamManager.__enter__", _enter)
    wrapt.wrap_function_wrapper(streaming, "AsyncMessageStreamManager.__aenter__", _aenter)
    batch = "anthropic.resources.messages.batches"
    for name, (sync_wrapper, async_wrapper) in (("create", _batch_created), ("retrieve", _batch_looked_up)):
        wrapt.wrap_function_wrapper(batch, f"Batches.{name}", sync_wrapper)
        wrapt.wrap_function_wrapper(batch, f"AsyncBatches.{name}", async_wrapper)
    wrapt.wrap_function_wrapper(batch, "Batches.results", _batch_results)
    wrapt.wrap_function_wrapper(batch, "AsyncBatches.results", _batch_results_async)
    wrapt.wrap_function_wrapper("anthropic._base_client", "SyncHttpxClientWrapper.send", send_wrapper)
    wrapt.wrap_function_wrapper("anthropic._base_client", "AsyncHttpxClientWrapper.send", send_async_wrapper)
    _installed = True
