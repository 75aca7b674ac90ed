"""Pydantic Logfire: gen_ai.* with Logfire's own shapes.

- Span names are message templates; `logfire.msg` is the formatted name, shown instead.
- Cached and reasoning tokens exist only inside the raw usage JSON `gen_ai.usage.raw`.
- A stream's usage arrives on a second, zero-duration "log" span whose `duration` attribute
  is the stream's real length: its interval is rebuilt from it, so that the request span and
  this one are seen as one provider call (the request span, without usage, then defers).
- Its scrubber replaces values whose key looks sensitive (`session_id`!) with a
  "[Scrubbed due to …]" marker: a marker is no tag.
"""

from __future__ import annotations

from typing import Any

from tokentrace import semconv
from tokentrace.canonical import MODALITY_TOKEN_FIELDS, TAG_FIELDS
from tokentrace.ingest.normalize import genai, usage
from tokentrace.ingest.normalize.fields import json_object, number, text
from tokentrace.ingest.raw import RawSpan

PRIORITY = 40

_SCRUBBED = "[Scrubbed due to"


def matches(span: RawSpan) -> bool:
    return span.scope_name.startswith("logfire") or "logfire.span_type" in span.attributes


def _raw_usage(row: dict[str, Any], raw: Any) -> None:
    """Cached, cache-write, reasoning, audio and image tokens (and the total) from the provider's
    raw usage; the input count of the gen_ai attributes already includes the cache."""
    if not isinstance(raw, dict):
        return
    counts = usage.read(raw, "gen_ai.usage.raw")
    for field in (
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "total_tokens",
        *MODALITY_TOKEN_FIELDS,
    ):
        if row[field] is None:
            row[field] = counts[field]


def apply(span: RawSpan, row: dict[str, Any]) -> None:
    """gen_ai.* fields, then Logfire's shapes."""
    attrs = span.attributes
    genai.apply(span, row)
    _raw_usage(row, json_object(attrs.get("gen_ai.usage.raw")))
    message = text(attrs.get("logfire.msg"))
    if message:
        row["name"] = message
    for field in TAG_FIELDS:
        if isinstance(row[field], str) and row[field].startswith(_SCRUBBED):
            row[field] = None
    duration = number(attrs.get("duration"))
    if attrs.get("logfire.span_type") == "log" and duration is not None and row["operation"] != "other":
        row["start_time"] = row["end_time"] - int(duration * 1e9)
        row["duration_ms"] = duration * 1000
        row["streaming"] = True
        attrs[semconv.USAGE_REPORT] = True
