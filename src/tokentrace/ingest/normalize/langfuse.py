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

from tokentrace import semconv, vocab
from tokentrace.ingest.normalize import genai, messages, usage
from tokentrace.ingest.normalize.fields import (
    add_cache_to_input,
    fill_tags,
    integer,
    json_object,
    number,
    text,
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


def matches(span: RawSpan) -> bool:
    if span.scope_name == "langfuse-sdk":
        return True
    return any(key.startswith("langfuse.") for key in span.attributes)


def _usage(row: dict[str, Any], details: Any) -> None:
    if not isinstance(details, dict):
        return
    row.update(usage.read(details, "usage_details"))
    if usage.input_excludes_cache(details):
        add_cache_to_input(row)


def _parameters(row: dict[str, Any], parameters: Any) -> None:
    if not isinstance(parameters, dict):
        return
    row["temperature"] = number(parameters.get("temperature"))
    row["top_p"] = number(parameters.get("top_p"))
    row["max_tokens"] = integer(parameters.get("max_tokens"))  # "Infinity" (unset) is no limit
    row["seed"] = integer(parameters.get("seed"))


def _first_token_ms(start_ns: int, value: Any) -> float | None:
    stamp = json_object(value)
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(int(when.timestamp() * 1e6) * 1000 - start_ns, 0) / 1e6


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
    row["operation"] = _TYPES.get(kind, row["operation"])
    if row["operation"] in ("chat", "embeddings"):
        if row["provider"] is None and "-" in span.name:
            row["provider"] = vocab.provider(span.name.split("-", 1)[0])
        row["response_model"] = row["response_model"] or text(attrs.pop(_OBSERVATION + "model.name", None))
    _usage(row, json_object(attrs.pop(_OBSERVATION + "usage_details", None)))
    _parameters(row, json_object(attrs.pop(_OBSERVATION + "model.parameters", None)))
    finish = json_object(attrs.get(_OBSERVATION + "metadata.finish_reason"))
    row["finish_reason"] = row["finish_reason"] or vocab.finish_reason(finish)
    if _OBSERVATION + "completion_start_time" in attrs:
        row["ttft_ms"] = _first_token_ms(span.start_unix_nano, attrs[_OBSERVATION + "completion_start_time"])

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
