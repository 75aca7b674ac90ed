"""Rule checks run at ingest on every LLM call; a rule that fires records a boolean score.

Rules record only what they find (a score of true), so a rule's rate over calls is its
score count over the calls of the same filter. The score id is derived from the span, so a
span delivered twice scores once.
"""

from __future__ import annotations

from typing import Any

import orjson

from tokentrace import semconv

_LLM = frozenset({"chat", "text_completion"})


def _rule_score(row: dict[str, Any], name: str, comment: str) -> dict[str, Any]:
    return {
        "project_id": row["project_id"],
        "score_id": f"rule:{name}:{row['trace_id']}:{row['span_id']}",
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
        "name": name,
        "data_type": "boolean",
        "value": 1.0,
        "string_value": "true",
        "comment": comment,
        "source": "rule",
        "created_at": row["end_time"],
    }


def _output_texts(output_messages: str | None) -> list[str]:
    """The text parts of the output messages, in any of the shapes the conventions use."""
    if not output_messages:
        return []
    try:
        messages = orjson.loads(output_messages)
    except orjson.JSONDecodeError:
        return []
    texts = []
    for message in messages if isinstance(messages, list) else [messages]:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        for part in message.get("parts") or []:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("content"), str):
                texts.append(part["content"])
    return texts


def _invalid_json(attrs: dict[str, Any], content: dict[str, Any] | None) -> str | None:
    if attrs.get(semconv.OUTPUT_TYPE) != "json":
        return None
    if attrs.get(semconv.JSON_VALID) is False:
        return "JSON output was asked for; the SDK found the response is not valid JSON"
    for text in _output_texts(content["output_messages"] if content else None):
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return f"JSON output was asked for; the response is not valid JSON ({exc})"
    return None


def check(row: dict[str, Any], attrs: dict[str, Any], content: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Scores for what the rules find on one normalized span (usually none)."""
    if row["operation"] not in _LLM or row["status"] == "error":
        return []
    found = []
    if row["finish_reason"] == "length":
        found.append(_rule_score(row, "truncated", "finish reason: length (the output hit max tokens)"))
    raw_reasons = attrs.get(semconv.FINISH_REASONS)
    if attrs.get(semconv.REFUSAL) is True or row["finish_reason"] == "content_filter":
        found.append(_rule_score(row, "refusal", f"the provider refused (finish reason {raw_reasons!r})"))
    invalid = _invalid_json(attrs, content)
    if invalid:
        found.append(_rule_score(row, "invalid_json", invalid))
    return found
