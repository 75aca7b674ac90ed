"""The Langfuse Python SDK's OTLP export: langfuse.observation.* and langfuse.trace.*.

Almost everything sits in JSON strings: usage (`usage_details`, the provider's raw usage
keys), request parameters, input and output (the provider's message JSON), and every
metadata value (`langfuse.trace.metadata.tenant_id` = `"\\"acme\\""`). The request model and
the provider are not sent: the model is the response model, the provider comes from the
span name (`OpenAI-generation`). Spans of other instrumentations exported through
Langfuse's provider (the anthropic SDK's own) carry its trace attributes too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tokentrace import semconv
from tokentrace.ingest.normalize import genai, messages, vocab
from tokentrace.ingest.normalize.base import (
    add_cache_to_input,
    dig,
    fill_tags,
    integer,
    json_object,
    number,
    text,
    token_count,
)
from tokentrace.ingest.raw import RawSpan

PRIORITY = 50

_OBSERVATION = "langfuse.observation."
_METADATA = "langfuse.trace.metadata."
_TYPES = {
    "generation": "chat",
    "embedding": "embeddings",
    "agent": "invoke_agent",
    "tool": "execute_tool",
    "retriever": "retrieval",
}
_USAGE = {
    "input_tokens": (("prompt_tokens",), ("input_tokens",), ("input",)),
    "output_tokens": (("completion_tokens",), ("output_tokens",), ("output",)),
    "total_tokens": (("total_tokens",), ("total",)),
    "cache_read_tokens": (
        ("prompt_tokens_details", "cached_tokens"),
        ("input_tokens_details", "cached_tokens"),
        ("cache_read_input_tokens",),
        ("input_cached_tokens",),
    ),
    "cache_write_tokens": (("cache_creation_input_tokens",),),
    "reasoning_tokens": (
        ("completion_tokens_details", "reasoning_tokens"),
        ("output_tokens_details", "reasoning_tokens"),
    ),
}


def matches(span: RawSpan) -> bool:
    if span.scope_name == "langfuse-sdk":
        return True
    return any(key.startswith("langfuse.") for key in span.attributes)


def _usage(row: dict[str, Any], usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    for field, paths in _USAGE.items():
        value = next((v for path in paths if (v := dig(usage, *path)) is not None), None)
        row[field] = token_count(value, f"usage_details {field}")
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        add_cache_to_input(row)  # Anthropic's raw usage: input excludes the cache


def _parameters(row: dict[str, Any], parameters: Any) -> None:
    if not isinstance(parameters, dict):
        return
    row["temperature"] = number(parameters.get("temperature"))
    row["top_p"] = number(parameters.get("top_p"))
    row["max_tokens"] = integer(parameters.get("max_tokens"))  # "Infinity" (unset) is no limit
    row["seed"] = integer(parameters.get("seed"))


def _first_token(row: dict[str, Any], start_ns: int, value: Any) -> None:
    stamp = json_object(value)
    if not isinstance(stamp, str):
        return
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return
    first_ns = int(when.timestamp() * 1e6) * 1000
    row["streaming"] = True
    row["ttft_ms"] = max(first_ns - start_ns, 0) / 1e6
    if row["output_tokens"] and row["output_tokens"] > 1:
        row["tpot_ms"] = max(row["duration_ms"] - row["ttft_ms"], 0.0) / (row["output_tokens"] - 1)


def apply(span: RawSpan, row: dict[str, Any]) -> None:
    """gen_ai.* first (spans of other instrumentations), then Langfuse's observation fields."""
    attrs = span.attributes
    genai.apply(span, row)
    metadata = {k[len(_METADATA) :]: json_object(v) for k, v in attrs.items() if k.startswith(_METADATA)}
    if metadata:
        fill_tags(row, metadata)
    kind = attrs.get(_OBSERVATION + "type")
    if kind is None:
        return
    row["operation"] = _TYPES.get(kind, row["operation"] if row["operation"] != "other" else "other")
    if row["operation"] in ("chat", "embeddings"):
        if row["provider"] is None and "-" in span.name:
            row["provider"] = vocab.provider(span.name.split("-", 1)[0])
        row["response_model"] = row["response_model"] or text(attrs.pop(_OBSERVATION + "model.name", None))
    _usage(row, json_object(attrs.pop(_OBSERVATION + "usage_details", None)))
    _parameters(row, json_object(attrs.pop(_OBSERVATION + "model.parameters", None)))
    finish = json_object(attrs.get(_OBSERVATION + "metadata.finish_reason"))
    row["finish_reason"] = row["finish_reason"] or vocab.finish_reason(finish)
    if _OBSERVATION + "completion_start_time" in attrs:
        _first_token(row, span.start_unix_nano, attrs[_OBSERVATION + "completion_start_time"])

    output = json_object(attrs.get(_OBSERVATION + "output"))
    if row["finish_reason"] is None and isinstance(output, dict) and output.get("tool_calls"):
        row["finish_reason"] = "tool_calls"
    if row["operation"] == "chat":
        inputs = messages.from_openai(attrs.get(_OBSERVATION + "input"))
        outputs = messages.from_openai(output, finish_reason=row["finish_reason"])
        if inputs:
            attrs[semconv.INPUT_MESSAGES] = inputs
            attrs.pop(_OBSERVATION + "input")
        if outputs:
            attrs[semconv.OUTPUT_MESSAGES] = outputs
            attrs.pop(_OBSERVATION + "output")

    if attrs.get(_OBSERVATION + "level") == "ERROR":
        row["status"] = "error"
        message = text(attrs.get(_OBSERVATION + "status_message"))
        row["status_message"] = row["status_message"] or message
        if row["error_type"] in (None, "other"):
            row["error_type"] = vocab.error_type(message)
