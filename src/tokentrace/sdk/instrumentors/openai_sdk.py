"""Instrument the official `openai` SDK: chat completions, embeddings and the Responses API,
sync and async, plain and streamed; every HTTP attempt of its retry loop is recorded."""

from __future__ import annotations

from typing import Any

import wrapt

from tokentrace.sdk.instrumentors.calls import (
    Call,
    calling,
    end_call,
    given,
    send_async_wrapper,
    send_wrapper,
    start_call,
)
from tokentrace.sdk.instrumentors.streams import AsyncTracedStream, TracedStream

_installed = False


def _provider(resource: Any) -> str:
    client = getattr(resource, "_client", None)
    return "azure.ai.openai" if "Azure" in type(client).__name__ else "openai"


def _parsed(result: Any) -> Any:
    """The response model, also behind `with_raw_response` (which caches its parse)."""
    parse = getattr(result, "parse", None)
    return parse() if callable(parse) and not hasattr(result, "model_dump") else result


def _set_usage(span: Any, usage: Any, inp: str, out: str, cached_in: str, reasoning_in: str) -> None:
    if usage is None:
        return
    values = {
        "gen_ai.usage.input_tokens": getattr(usage, inp, None),
        "gen_ai.usage.output_tokens": getattr(usage, out, None),
        "gen_ai.usage.total_tokens": getattr(usage, "total_tokens", None),
        "gen_ai.usage.cache_read.input_tokens": getattr(
            getattr(usage, cached_in, None), "cached_tokens", None
        ),
        "gen_ai.usage.reasoning.output_tokens": getattr(
            getattr(usage, reasoning_in, None), "reasoning_tokens", None
        ),
    }
    for key, value in values.items():
        if isinstance(value, int):
            span.set_attribute(key, value)


def _set_chat_usage(span: Any, usage: Any) -> None:
    _set_usage(
        span,
        usage,
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    )


def _set_responses_usage(span: Any, usage: Any) -> None:
    _set_usage(span, usage, "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def _response_identity(span: Any, model: Any, ident: Any) -> None:
    if isinstance(model, str):
        span.set_attribute("gen_ai.response.model", model)
    if isinstance(ident, str):
        span.set_attribute("gen_ai.response.id", ident)


# --- chat completions --------------------------------------------------------------------
def _chat_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "gen_ai.request.temperature": given(kwargs.get("temperature")),
        "gen_ai.request.top_p": given(kwargs.get("top_p")),
        "gen_ai.request.max_tokens": given(kwargs.get("max_completion_tokens"))
        or given(kwargs.get("max_tokens")),
        "gen_ai.request.seed": given(kwargs.get("seed")),
        "gen_ai.request.stream": kwargs.get("stream") is True,
    }


def _chat_response(call: Call, result: Any) -> None:
    response = _parsed(result)
    span = call.span
    _response_identity(span, getattr(response, "model", None), getattr(response, "id", None))
    reasons = [c.finish_reason for c in getattr(response, "choices", None) or [] if c.finish_reason]
    if reasons:
        span.set_attribute("gen_ai.response.finish_reasons", reasons)
    _set_chat_usage(span, getattr(response, "usage", None))


class _ChatStream:
    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}
        self.usage: Any = None
        self.model: Any = None
        self.ident: Any = None

    def item(self, call: Call, chunk: Any) -> None:
        self.model = getattr(chunk, "model", None) or self.model
        self.ident = getattr(chunk, "id", None) or self.ident
        for choice in getattr(chunk, "choices", None) or []:
            if choice.finish_reason:
                self.reasons[choice.index] = choice.finish_reason
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage

    def finish(self, call: Call) -> None:
        _response_identity(call.span, self.model, self.ident)
        if self.reasons:
            call.span.set_attribute(
                "gen_ai.response.finish_reasons", [self.reasons[i] for i in sorted(self.reasons)]
            )
        _set_chat_usage(call.span, self.usage)  # present when stream_options.include_usage was asked


# --- responses ---------------------------------------------------------------------------
def _responses_request(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "gen_ai.request.temperature": given(kwargs.get("temperature")),
        "gen_ai.request.top_p": given(kwargs.get("top_p")),
        "gen_ai.request.max_tokens": given(kwargs.get("max_output_tokens")),
        "gen_ai.request.stream": kwargs.get("stream") is True,
    }


def _responses_response(call: Call, result: Any) -> None:
    response = _parsed(result)
    _response_identity(call.span, getattr(response, "model", None), getattr(response, "id", None))
    status = getattr(response, "status", None)
    if isinstance(status, str):
        call.span.set_attribute("gen_ai.response.finish_reasons", [status])
    _set_responses_usage(call.span, getattr(response, "usage", None))


class _ResponsesStream:
    def __init__(self) -> None:
        self.final: Any = None

    def item(self, call: Call, event: Any) -> None:
        if getattr(event, "type", "") in ("response.completed", "response.incomplete", "response.failed"):
            self.final = event.response

    def finish(self, call: Call) -> None:
        if self.final is not None:
            _responses_response(call, self.final)


# --- embeddings ----------------------------------------------------------------------------
def _embeddings_response(call: Call, result: Any) -> None:
    response = _parsed(result)
    if isinstance(getattr(response, "model", None), str):
        call.span.set_attribute("gen_ai.response.model", response.model)
    usage = getattr(response, "usage", None)
    if usage is not None and isinstance(getattr(usage, "prompt_tokens", None), int):
        call.span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)


# --- wrapping ------------------------------------------------------------------------------
def _wrappers(operation: str, request, response, stream_observer):
    def sync_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = start_call(operation, _provider(instance), given(kwargs.get("model")), request(kwargs))
        with calling(call):
            result = wrapped(*args, **kwargs)
        if kwargs.get("stream") is True and stream_observer is not None and not hasattr(result, "parse"):
            return TracedStream(result, call, stream_observer())
        response(call, result)
        end_call(call)
        return result

    async def async_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = start_call(operation, _provider(instance), given(kwargs.get("model")), request(kwargs))
        with calling(call):
            result = await wrapped(*args, **kwargs)
        if kwargs.get("stream") is True and stream_observer is not None and not hasattr(result, "parse"):
            return AsyncTracedStream(result, call, stream_observer())
        response(call, result)
        end_call(call)
        return result

    return sync_wrapper, async_wrapper


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
            _wrappers("chat", _chat_request, _chat_response, _ChatStream),
        ),
        (
            "openai.resources.responses.responses",
            "Responses",
            "AsyncResponses",
            _wrappers("chat", _responses_request, _responses_response, _ResponsesStream),
        ),
        (
            "openai.resources.embeddings",
            "Embeddings",
            "AsyncEmbeddings",
            _wrappers("embeddings", lambda kwargs: {}, _embeddings_response, None),
        ),
    ]
    for module, sync_cls, async_cls, (sync_wrapper, async_wrapper) in targets:
        wrapt.wrap_function_wrapper(module, f"{sync_cls}.create", sync_wrapper)
        wrapt.wrap_function_wrapper(module, f"{async_cls}.create", async_wrapper)
    wrapt.wrap_function_wrapper("openai._base_client", "SyncAPIClient._send_request", send_wrapper)
    wrapt.wrap_function_wrapper("openai._base_client", "AsyncAPIClient._send_request", send_async_wrapper)
    _installed = True
