"""Instrument the official `openai` SDK: chat completions, embeddings and the Responses API,
sync and async, plain and streamed; every HTTP attempt of its retry loop is recorded; the
results of batches read back (batches.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry.context import Context

from tokentrace import vocab
from tokentrace.sdk import call_span, content
from tokentrace.sdk.content import text_part, tool_call_part, tool_response_part
from tokentrace.sdk.instrumentors import batches
from tokentrace.sdk.instrumentors.calls import (
    Call,
    check_output,
    parsed_response,
    record_response,
    send_async_wrapper,
    send_wrapper,
    start_call,
)
from tokentrace.sdk.instrumentors.wrappers import create_wrappers

_installed = False


def _provider(resource: Any) -> str:
    client = getattr(resource, "_client", None)
    return "azure.ai.openai" if "Azure" in type(client).__name__ else "openai"


def _usage(usage: Any, inp: str, out: str, cached_in: str, reasoning_in: str) -> dict[str, int]:
    # Each count is kept when it is an int (a field may be missing or None). Spelled out, no
    # loop or comprehension: this runs on every call.
    counts: dict[str, int] = {}
    if usage is None:
        return counts
    value = getattr(usage, inp, None)
    if type(value) is int:
        counts["gen_ai.usage.input_tokens"] = value
    value = getattr(usage, out, None)
    if type(value) is int:
        counts["gen_ai.usage.output_tokens"] = value
    value = getattr(usage, "total_tokens", None)
    if type(value) is int:
        counts["gen_ai.usage.total_tokens"] = value
    details = getattr(usage, cached_in, None)
    if details is not None:
        value = getattr(details, "cached_tokens", None)
        if type(value) is int:
            counts["gen_ai.usage.cache_read.input_tokens"] = value
        # Newer OpenAI answers report prompt-cache writes too (part of the input, as cached reads are).
        value = getattr(details, "cache_write_tokens", None)
        if type(value) is int:
            counts["gen_ai.usage.cache_creation.input_tokens"] = value
        value = getattr(details, "audio_tokens", None)  # audio heard: priced at its own rate
        if type(value) is int and value:
            counts["gen_ai.usage.audio.input_tokens"] = value
    details = getattr(usage, reasoning_in, None)
    if details is not None:
        value = getattr(details, "reasoning_tokens", None)
        if type(value) is int:
            counts["gen_ai.usage.reasoning.output_tokens"] = value
        value = getattr(details, "audio_tokens", None)  # an answer spoken
        if type(value) is int and value:
            counts["gen_ai.usage.audio.output_tokens"] = value
    return counts


#: Where chat completions and the Responses API keep their counts (`_usage`'s names).
_CHAT_USAGE = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
_RESPONSES_USAGE = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def _plain(item: Any) -> dict[str, Any]:
    """A request item as a dict (the SDK takes TypedDicts and, from some callers, models)."""
    if isinstance(item, dict):
        return item
    if isinstance(item, type):  # a pydantic model given as response_format
        return {}
    dump = getattr(item, "model_dump", None)
    return dump() if callable(dump) else {}


def _content_parts(value: Any) -> list[dict[str, Any]]:
    """Message content (a string or content parts) in the conventions' parts format; media
    is recorded by kind only, never its data."""
    if isinstance(value, str):
        return [text_part(value)]
    parts = []
    for part in value if isinstance(value, list) else ():
        part = _plain(part)
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append(text_part(part["text"]))
        elif kind == "refusal":
            parts.append(text_part(part.get("refusal") or ""))
        elif kind:
            parts.append({"type": kind})
    return parts


def _expect_json(call: Call, fmt: Any) -> None:
    """Note a request for JSON output (a JSON format, or a pydantic model given to parse())."""
    if fmt is None:  # most calls
        return
    call.wants_json = isinstance(fmt, type) or _plain(fmt).get("type") in ("json_object", "json_schema")
    if call.wants_json:
        call.span.set_attribute("gen_ai.output.type", "json")


# --- chat completions --------------------------------------------------------------------
def _chat_inputs(messages: Any) -> list[dict[str, Any]]:
    inputs = []
    for message in messages if isinstance(messages, list | tuple) else ():
        message = _plain(message)
        role = message.get("role")
        if role == "tool":
            parts = [tool_response_part(message.get("tool_call_id"), message.get("content"))]
        else:
            parts = _content_parts(message.get("content"))
        for tool_call in message.get("tool_calls") or ():
            tool_call = _plain(tool_call)
            function = tool_call.get("function") or {}
            parts.append(tool_call_part(tool_call.get("id"), function.get("name"), function.get("arguments")))
        inputs.append({"role": role, "parts": parts})
    return inputs


def _chat_start(call: Call, kwargs: dict[str, Any]) -> None:
    _expect_json(call, kwargs.get("response_format"))
    if content.capturing():
        content.record(call.span, inputs=_chat_inputs(kwargs.get("messages")))


def _chat_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "gen_ai.request.temperature": kwargs.get("temperature"),
        "gen_ai.request.top_p": kwargs.get("top_p"),
        "gen_ai.request.max_tokens": kwargs.get("max_completion_tokens") or kwargs.get("max_tokens"),
        "gen_ai.request.seed": kwargs.get("seed"),
        "gen_ai.request.stream": kwargs.get("stream") is True,
        "openai.request.service_tier": kwargs.get("service_tier"),
    }


def _served(usage: dict[str, Any], response: Any) -> dict[str, Any]:
    """`usage` with the tier the response says it was served at (what it is billed at)."""
    tier = getattr(response, "service_tier", None)
    if isinstance(tier, str):
        usage["openai.response.service_tier"] = tier
    return usage


def _chat_response(call: Call, result: Any) -> None:
    response = parsed_response(result)
    choices = getattr(response, "choices", None) or []
    reasons, refused = [], False
    for choice in choices:
        if choice.finish_reason:
            reasons.append(choice.finish_reason)
        refused = refused or bool(getattr(choice.message, "refusal", None))
    usage = _served(_usage(getattr(response, "usage", None), *_CHAT_USAGE), response)
    record_response(
        call.span, getattr(response, "model", None), getattr(response, "id", None), reasons, usage
    )
    if refused or call.wants_json:
        check_output(call, [c.message.content for c in choices[:1] if c.message.content], refused)
    if content.capturing():
        content.record(call.span, outputs=_chat_outputs(choices))


def _chat_outputs(choices: list[Any]) -> list[dict[str, Any]]:
    outputs = []
    for choice in choices:
        message = choice.message
        parts = [text_part(message.content)] if message.content else []
        if getattr(message, "refusal", None):
            parts.append(text_part(message.refusal))
        for tool_call in getattr(message, "tool_calls", None) or []:
            function = getattr(tool_call, "function", None)
            parts.append(
                tool_call_part(
                    tool_call.id, getattr(function, "name", None), getattr(function, "arguments", None)
                )
            )
        outputs.append({"role": "assistant", "parts": parts, "finish_reason": choice.finish_reason})
    return outputs


class _ChatStream:
    def __init__(self, call: Call) -> None:
        self.reasons: dict[int, str] = {}
        self.usage: Any = None
        self.model: Any = None
        self.ident: Any = None
        self.service_tier: Any = None  # read as a response's, by _served
        # Text is gathered only when something needs it (capture, a JSON check).
        self.gather = content.capturing() or call.wants_json
        self.texts: dict[int, list[str]] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.refused = False

    def _delta(self, index: int, delta: Any) -> None:
        if delta.content:
            self.texts.setdefault(index, []).append(delta.content)
        if getattr(delta, "refusal", None):
            self.refused = True
            self.texts.setdefault(index, []).append(delta.refusal)
        for tool_call in getattr(delta, "tool_calls", None) or []:
            calls = self.tool_calls.setdefault(index, {})
            entry = calls.setdefault(tool_call.index, {"id": None, "name": None, "arguments": []})
            entry["id"] = tool_call.id or entry["id"]
            function = tool_call.function
            if function is not None:
                entry["name"] = function.name or entry["name"]
                if function.arguments:
                    entry["arguments"].append(function.arguments)

    def item(self, call: Call, chunk: Any) -> None:
        self.model = getattr(chunk, "model", None) or self.model
        self.ident = getattr(chunk, "id", None) or self.ident
        self.service_tier = getattr(chunk, "service_tier", None) or self.service_tier
        for choice in getattr(chunk, "choices", None) or []:
            if choice.finish_reason:
                self.reasons[choice.index] = choice.finish_reason
            if self.gather and choice.delta is not None:
                self._delta(choice.index, choice.delta)
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage

    def finish(self, call: Call) -> None:
        reasons = [self.reasons[i] for i in sorted(self.reasons)]
        # usage is there when stream_options.include_usage was asked
        usage = _served(_usage(self.usage, *_CHAT_USAGE), self)
        record_response(call.span, self.model, self.ident, reasons, usage)
        if not self.gather:
            return
        outputs = []
        for index in sorted(set(self.texts) | set(self.tool_calls) | set(self.reasons)):
            text = "".join(self.texts.get(index, ()))
            parts = [text_part(text)] if text else []
            for entry in (self.tool_calls.get(index) or {}).values():
                parts.append(tool_call_part(entry["id"], entry["name"], "".join(entry["arguments"])))
            outputs.append({"role": "assistant", "parts": parts, "finish_reason": self.reasons.get(index)})
        first = "".join(self.texts.get(min(self.texts), ())) if self.texts and not self.refused else ""
        check_output(call, [first] if first else [], refused=self.refused)
        content.record(call.span, outputs=outputs)


# --- responses ---------------------------------------------------------------------------
def _responses_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "gen_ai.request.temperature": kwargs.get("temperature"),
        "gen_ai.request.top_p": kwargs.get("top_p"),
        "gen_ai.request.max_tokens": kwargs.get("max_output_tokens"),
        "gen_ai.request.stream": kwargs.get("stream") is True,
        "openai.request.service_tier": kwargs.get("service_tier"),
    }


def _responses_start(call: Call, kwargs: dict[str, Any]) -> None:
    _expect_json(call, _plain(kwargs.get("text")).get("format"))
    if not content.capturing():
        return
    given_input = kwargs.get("input")
    inputs = []
    if isinstance(given_input, str):
        inputs.append({"role": "user", "parts": [text_part(given_input)]})
    for item in given_input if isinstance(given_input, list) else ():
        item = _plain(item)
        kind = item.get("type")
        if kind == "function_call_output":
            inputs.append(
                {"role": "tool", "parts": [tool_response_part(item.get("call_id"), item.get("output"))]}
            )
        elif kind == "function_call":
            part = tool_call_part(item.get("call_id"), item.get("name"), item.get("arguments"))
            inputs.append({"role": "assistant", "parts": [part]})
        else:
            inputs.append({"role": item.get("role"), "parts": _content_parts(item.get("content"))})
    instructions = kwargs.get("instructions")
    system = [text_part(instructions)] if isinstance(instructions, str) else None
    content.record(call.span, system=system, inputs=inputs)


def _responses_response(call: Call, result: Any) -> None:
    response = parsed_response(result)
    status = getattr(response, "status", None)
    reasons = [status] if isinstance(status, str) else None
    usage = _served(_usage(getattr(response, "usage", None), *_RESPONSES_USAGE), response)
    record_response(
        call.span, getattr(response, "model", None), getattr(response, "id", None), reasons, usage
    )
    parts, texts, refused = [], [], False
    for item in getattr(response, "output", None) or []:
        kind = getattr(item, "type", None)
        if kind == "message":
            for part in item.content or []:
                if getattr(part, "type", None) == "refusal":
                    refused = True
                    parts.append(text_part(part.refusal))
                elif isinstance(getattr(part, "text", None), str):
                    texts.append(part.text)
                    parts.append(text_part(part.text))
        elif kind == "function_call":
            parts.append(tool_call_part(item.call_id, item.name, item.arguments))
    check_output(call, ["".join(texts)] if texts else [], refused=refused)
    content.record(call.span, outputs=[{"role": "assistant", "parts": parts, "finish_reason": status}])


class _ResponsesStream:
    def __init__(self, call: Call) -> None:
        self.final: Any = None

    def item(self, call: Call, event: Any) -> None:
        if getattr(event, "type", "") in ("response.completed", "response.incomplete", "response.failed"):
            self.final = event.response

    def finish(self, call: Call) -> None:
        if self.final is not None:
            _responses_response(call, self.final)


# --- embeddings ----------------------------------------------------------------------------
def _embeddings_response(call: Call, result: Any) -> None:
    response = parsed_response(result)
    if isinstance(getattr(response, "model", None), str):
        call.span.set_attribute("gen_ai.response.model", response.model)
    usage = getattr(response, "usage", None)
    if usage is not None and isinstance(getattr(usage, "prompt_tokens", None), int):
        call.span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)


# --- batches (sdk/instrumentors/batches.py) ---------------------------------------------------
#: A result's answer object → the endpoint it answers, when the batch's is not known.
_BATCH_OBJECTS = {
    "chat.completion": "/v1/chat/completions",
    "response": "/v1/responses",
    "list": "/v1/embeddings",
}


def _batch_fill(path: str, body: dict[str, Any]) -> Callable[[Any], Any]:
    """Record a batch result's answer on its span, as the direct call's answer would be."""

    def fill(span: Any) -> Any:
        from openai.types import CreateEmbeddingResponse
        from openai.types.chat import ChatCompletion
        from openai.types.responses import Response

        if path == "/v1/embeddings":
            embedded = CreateEmbeddingResponse.construct(**body)
            call_span.put(span, {"gen_ai.response.model": embedded.model})
            usage = getattr(embedded, "usage", None)
            if isinstance(getattr(usage, "prompt_tokens", None), int):
                span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            return embedded.model
        if path == "/v1/responses":
            response: Any = Response.construct(**body)
            status = getattr(response, "status", None)
            reasons = [status] if isinstance(status, str) else None
            usage = _usage(getattr(response, "usage", None), *_RESPONSES_USAGE)
        else:
            response = ChatCompletion.construct(**body)
            reasons = [c.finish_reason for c in getattr(response, "choices", None) or [] if c.finish_reason]
            usage = _usage(getattr(response, "usage", None), *_CHAT_USAGE)
        record_response(span, response.model, response.id, reasons, _served(usage, response))
        return response.model

    return fill


def _read_results(file_id: Any, result: Any) -> None:
    """Each line of a batch's output or error file, as the app reads it, a span."""
    data = getattr(result, "content", None)  # the body, already read: files.content does not stream
    if not isinstance(file_id, str) or not isinstance(data, bytes) or batches.suppressed():
        return
    batch_id = batches.book.files.get(file_id, file_id)  # a batch looked up elsewhere: the file names it
    for line in batches.jsonl(data) or ():
        response = line.get("response") if isinstance(line.get("response"), dict) else {}
        body = response.get("body") if isinstance(response.get("body"), dict) else {}
        path = batches.book.endpoint(batch_id) or _BATCH_OBJECTS.get(
            body.get("object"), "/v1/chat/completions"
        )
        operation = "embeddings" if path == "/v1/embeddings" else "chat"
        status = response.get("status_code")
        if status == 200:
            batches.record(
                "openai",
                operation,
                batch_id,
                line["custom_id"],
                batches.started(body.get("created")),
                _batch_fill(path, body),
            )
        else:
            error = body.get("error") if isinstance(body.get("error"), dict) else line.get("error") or {}
            kind = vocab.error_type(
                error.get("code"),
                error.get("message"),
                error.get("type"),
                http_status=status if isinstance(status, int) else None,
            )
            batches.record(
                "openai", operation, batch_id, line["custom_id"], batches.started(None), None, kind
            )


_batch_created = batches.noting(
    lambda result, args, kwargs: batches.book.created(
        getattr(parsed_response(result), "id", None), kwargs.get("endpoint")
    )
)
_batch_looked_up = batches.noting(
    lambda result, args, kwargs: batches.book.looked_up(parsed_response(result))
)
_file_content = batches.noting(
    lambda result, args, kwargs: _read_results(kwargs.get("file_id", args[0] if args else None), result)
)


# --- wrapping ------------------------------------------------------------------------------
def _wrappers(operation: str, request, start, response, stream_observer):
    def begin(instance: Any, kwargs: dict, ctx: Context) -> Call:
        call = start_call(operation, _provider(instance), kwargs.get("model"), request(kwargs), ctx)
        if start is not None:
            start(call, kwargs)
        return call

    return create_wrappers(begin, response, stream_observer)


def instrument() -> None:
    """Patch the openai SDK classes once; clients made before or after are traced alike."""
    global _installed
    if _installed:
        return
    targets = [
        (
            "openai.resources.chat.completions.completions",
            "Completions",
            "AsyncCompletions",
            _wrappers("chat", _chat_request, _chat_start, _chat_response, _ChatStream),
        ),
        (
            "openai.resources.responses.responses",
            "Responses",
            "AsyncResponses",
            _wrappers("chat", _responses_request, _responses_start, _responses_response, _ResponsesStream),
        ),
        (
            "openai.resources.embeddings",
            "Embeddings",
            "AsyncEmbeddings",
            _wrappers("embeddings", lambda kwargs: {}, None, _embeddings_response, None),
        ),
    ]
    for module, sync_cls, async_cls, (sync_wrapper, async_wrapper) in targets:
        wrapt.wrap_function_wrapper(module, f"{sync_cls}.create", sync_wrapper)
        wrapt.wrap_function_wrapper(module, f"{async_cls}.create", async_wrapper)
        # parse() posts by itself; stream() helpers call create() and are traced through it.
        if module != "openai.resources.embeddings":
            wrapt.wrap_function_wrapper(module, f"{sync_cls}.parse", sync_wrapper)
            wrapt.wrap_function_wrapper(module, f"{async_cls}.parse", async_wrapper)
    for module, name, (sync_wrapper, async_wrapper) in (
        ("openai.resources.batches", "Batches.create", _batch_created),
        ("openai.resources.batches", "Batches.retrieve", _batch_looked_up),
        ("openai.resources.files", "Files.content", _file_content),
    ):
        wrapt.wrap_function_wrapper(module, name, sync_wrapper)
        wrapt.wrap_function_wrapper(module, f"Async{name}", async_wrapper)
    wrapt.wrap_function_wrapper("openai._base_client", "SyncAPIClient._send_request", send_wrapper)
    wrapt.wrap_function_wrapper("openai._base_client", "AsyncAPIClient._send_request", send_async_wrapper)
    _installed = True
