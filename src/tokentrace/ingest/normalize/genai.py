"""The OpenTelemetry GenAI semantic conventions (gen_ai.*), current and older spellings.

This is the fallback family: any span no more specific family claims is read as gen_ai.*.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson

from tokentrace import semconv, vocab
from tokentrace.canonical import LLM_OPERATIONS
from tokentrace.ingest.normalize.attrmap import AttributeMap
from tokentrace.ingest.normalize.fields import fill_tags, integer, json_object, number, text, token_count
from tokentrace.ingest.raw import RawSpan

PRIORITY = 1000  # last: the generic reading

_TOKENS = (
    ("input_tokens", semconv.INPUT_TOKENS),
    ("output_tokens", semconv.OUTPUT_TOKENS),
    ("total_tokens", semconv.TOTAL_TOKENS),
    ("cache_read_tokens", semconv.CACHE_READ_TOKENS),
    ("cache_write_tokens", semconv.CACHE_WRITE_TOKENS),
    ("reasoning_tokens", semconv.REASONING_TOKENS),
    ("input_audio_tokens", semconv.INPUT_AUDIO_TOKENS),
    ("output_audio_tokens", semconv.OUTPUT_AUDIO_TOKENS),
    ("cache_audio_read_tokens", semconv.CACHE_AUDIO_READ_TOKENS),
    ("input_image_tokens", semconv.INPUT_IMAGE_TOKENS),
    ("output_image_tokens", semconv.OUTPUT_IMAGE_TOKENS),
    ("cache_image_read_tokens", semconv.CACHE_IMAGE_READ_TOKENS),
)

_TOKEN_KEYS = tuple((field, keys[0]) for field, keys in _TOKENS)

# Vocabulary-normalized values keep their raw spelling in `attributes`.
_KEEP = frozenset(
    {
        *semconv.PROVIDER,
        semconv.OPERATION,
        semconv.FINISH_REASONS,
        "anthropic.message.stop_reason",
        semconv.TOOL_NAME,
        semconv.AGENT_NAME,
        semconv.DATA_SOURCE,
        "db.system",
        "db.system.name",
    }
)
_MAP = AttributeMap(
    {
        "provider": semconv.PROVIDER,
        "operation": (semconv.OPERATION,),
        "request_model": (semconv.REQUEST_MODEL,),
        "response_model": (semconv.RESPONSE_MODEL,),
        "response_id": (semconv.RESPONSE_ID,),
        **dict(_TOKENS),
        "finish_reasons": (semconv.FINISH_REASONS, "anthropic.message.stop_reason"),
        "temperature": (semconv.TEMPERATURE,),
        "top_p": (semconv.TOP_P,),
        "max_tokens": (semconv.MAX_TOKENS,),
        "seed": (semconv.SEED,),
        "streaming": semconv.STREAM,
        "ttft_ms": (semconv.TTFT_MS,),
        "ttft_s": semconv.TTFT_SECONDS,
        "tool_name": (semconv.TOOL_NAME,),
        "agent_name": (semconv.AGENT_NAME,),
        "data_source": (semconv.DATA_SOURCE,),
        "db_system": ("db.system.name", "db.system"),
    },
    keep=_KEEP,
)


def matches(span: RawSpan) -> bool:
    return True


def _finish_reasons(value: Any) -> Any:
    # Some libraries send the list as a JSON string ("[\"stop\"]").
    if isinstance(value, str) and value.startswith("["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _infer_operation(row: dict[str, Any], found: dict[str, Any]) -> str:
    if row["input_tokens"] is not None or row["output_tokens"] is not None or row["request_model"]:
        return "chat"
    if row["tool_name"]:
        return "execute_tool"
    if row["agent_name"]:
        return "invoke_agent"
    if row["data_source"] or found.get("db_system"):
        return "retrieval"
    return "other"


MCP_METHOD = "mcp.method.name"


def _mcp(span: RawSpan, row: dict[str, Any], method: str) -> None:
    """An MCP request (`tools/call get_weather`, seen by the client SDK, a client library and the
    server) carries a tool call across processes: it is the tool run's transport, shown in the
    tree with its tool, not another run of the tool (the framework's tool span is that)."""
    row["operation"] = "other"
    if method == "tools/call" and row["tool_name"] is None:
        head, _, tool = span.name.rpartition(" ")
        row["tool_name"] = tool if head.endswith("tools/call") and tool else None


# Fields read as they are sent, each with its reading; the rest need more than one value.
_READINGS: dict[str, Any] = {
    **dict.fromkeys(
        ("request_model", "response_model", "response_id", "tool_name", "agent_name", "data_source"), text
    ),
    "temperature": number,
    "top_p": number,
    "max_tokens": integer,
    "seed": integer,
    **{field: partial(token_count, key=key) for field, key in _TOKEN_KEYS},
}


def _read(found: dict[str, Any], row: dict[str, Any]) -> None:
    """The fields `found` has, into `row` (which starts with every one None: only what a span
    sent is read, ~10 of ~30 on a chat span, none on most others)."""
    for field, value in found.items():
        reading = _READINGS.get(field)
        if reading is not None:
            row[field] = reading(value)
    get = found.get
    row["provider"] = vocab.provider(get("provider"))
    if "finish_reasons" in found:
        row["finish_reason"] = vocab.finish_reason(_finish_reasons(found["finish_reasons"]))
    stream = get("streaming")
    row["streaming"] = stream if isinstance(stream, bool) else None
    ttft_ms = number(get("ttft_ms"))
    if ttft_ms is None and "ttft_s" in found:
        seconds = number(found["ttft_s"])
        ttft_ms = seconds * 1000 if seconds is not None else None
    row["ttft_ms"] = ttft_ms


def apply(span: RawSpan, row: dict[str, Any]) -> None:
    """Fill the gen_ai.* fields of `row` from the span's attributes (consuming what it maps)."""
    found = _MAP.extract(span.attributes)
    if found:
        _read(found, row)
    named = vocab.operation_from_name(span.name)
    row["operation"] = vocab.operation(found.get("operation")) or named or _infer_operation(row, found)
    if row["request_model"] is None and named in LLM_OPERATIONS and row["operation"] == named:
        # `chat claude-sonnet-4-5`: the conventions' span name says the model. A failed call
        # may carry nothing else (OpenLIT's Anthropic 429: no attributes at all).
        row["request_model"] = span.name.partition(" ")[2].strip() or None
    method = span.attributes.get(MCP_METHOD)
    if isinstance(method, str):
        _mcp(span, row, method)
    for field in ("input_tokens", "output_tokens"):  # pydantic-ai's agent run: its calls' totals
        total = span.attributes.get(f"gen_ai.aggregated_usage.{field}")
        if isinstance(total, int):
            span.attributes[semconv.SUBTOTAL + field] = total
    # Run metadata as a JSON object (pydantic-ai's `metadata`, on its agent span): tags.
    metadata = span.attributes.get("metadata")
    if isinstance(metadata, str) and metadata.startswith("{"):
        values = json_object(metadata)
        if isinstance(values, dict):
            fill_tags(row, values)
