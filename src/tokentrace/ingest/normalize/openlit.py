"""OpenLIT: its gen_ai.* variant.

Read as gen_ai.*, with OpenLIT's differences: its Anthropic input tokens are the raw API count
(cache reads and writes excluded), its cost `gen_ai.usage.cost` stays in attributes beside
ours, and the OpenAI `user` request parameter is its only user id.
"""

from __future__ import annotations

from typing import Any

from tokentrace.ingest.normalize import genai
from tokentrace.ingest.normalize.fields import add_cache_to_input, text
from tokentrace.ingest.raw import RawSpan

PRIORITY = 30


def matches(span: RawSpan) -> bool:
    return span.scope_name.startswith("openlit")


def apply(span: RawSpan, row: dict[str, Any]) -> None:
    """gen_ai.* fields, then OpenLIT's corrections."""
    genai.apply(span, row)
    if row["provider"] == "anthropic":
        add_cache_to_input(row)
    if row["user_id"] is None:
        row["user_id"] = text(span.attributes.get("gen_ai.request.user"))
