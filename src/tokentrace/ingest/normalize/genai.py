"""The OpenTelemetry GenAI semantic conventions (gen_ai.*), current and older spellings.

This is the fallback family: any span no more specific family claims is read as gen_ai.*.
"""

from __future__ import annotations

from typing import Any

import orjson

from tokentrace import semconv
from tokentrace.ingest.normalize import vocab
from tokentrace.ingest.normalize.base import first, integer, number, take, text, token_count
from tokentrace.ingest.raw import RawSpan

PRIORITY = 1000  # last: the generic reading


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


def _infer_operation(row: dict[str, Any], attrs: dict[str, Any]) -> str:
    if row["input_tokens"] is not None or row["output_tokens"] is not None or row["request_model"]:
        return "chat"
    if row["tool_name"]:
        return "execute_tool"
    if row["agent_name"]:
        return "invoke_agent"
    if row["data_source"] or attrs.get("db.system") or attrs.get("db.system.name"):
        return "retrieval"
    return "other"


def apply(span: RawSpan, row: dict[str, Any]) -> None:
    """Fill the gen_ai.* fields of `row` from the span's attributes (consuming what it maps)."""
    attrs = span.attributes
    row["provider"] = vocab.provider(first(attrs, semconv.PROVIDER))
    row["request_model"] = text(take(attrs, semconv.REQUEST_MODEL))
    row["response_model"] = text(take(attrs, semconv.RESPONSE_MODEL))

    for field, keys in (
        ("input_tokens", semconv.INPUT_TOKENS),
        ("output_tokens", semconv.OUTPUT_TOKENS),
        ("total_tokens", semconv.TOTAL_TOKENS),
        ("cache_read_tokens", semconv.CACHE_READ_TOKENS),
        ("cache_write_tokens", semconv.CACHE_WRITE_TOKENS),
        ("reasoning_tokens", semconv.REASONING_TOKENS),
    ):
        row[field] = token_count(take(attrs, keys), keys[0])
    if row["total_tokens"] is None and row["input_tokens"] is not None and row["output_tokens"] is not None:
        row["total_tokens"] = row["input_tokens"] + row["output_tokens"]

    row["finish_reason"] = vocab.finish_reason(_finish_reasons(attrs.get(semconv.FINISH_REASONS)))
    row["temperature"] = number(take(attrs, semconv.TEMPERATURE))
    row["top_p"] = number(take(attrs, semconv.TOP_P))
    row["max_tokens"] = integer(take(attrs, semconv.MAX_TOKENS))
    row["seed"] = integer(take(attrs, semconv.SEED))

    stream = take(attrs, semconv.STREAM)
    row["streaming"] = stream if isinstance(stream, bool) else None
    ttft_ms = number(take(attrs, semconv.TTFT_MS))
    if ttft_ms is None:
        seconds = number(take(attrs, semconv.TTFT_SECONDS))
        ttft_ms = seconds * 1000 if seconds is not None else None
    row["ttft_ms"] = ttft_ms
    if ttft_ms is not None and row["streaming"] is None:
        row["streaming"] = True
    output = row["output_tokens"]
    if ttft_ms is not None and output and output > 1:
        row["tpot_ms"] = max(row["duration_ms"] - ttft_ms, 0.0) / (output - 1)

    row["tool_name"] = text(first(attrs, semconv.TOOL_NAME))
    row["agent_name"] = text(first(attrs, semconv.AGENT_NAME))
    row["data_source"] = text(first(attrs, semconv.DATA_SOURCE))
    row["operation"] = vocab.operation(attrs.get(semconv.OPERATION)) or _infer_operation(row, attrs)
