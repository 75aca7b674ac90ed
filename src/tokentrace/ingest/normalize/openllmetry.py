"""OpenLLMetry / Traceloop: gen_ai.* plus traceloop.* (span kinds, association properties).

Its instrumentations (scopes `opentelemetry.instrumentation.openai.v1`, `…anthropic`, …) speak
gen_ai.*, read by the generic family; this adds what is Traceloop's own: the workflow, task,
agent and tool span kinds of traceloop-sdk, `traceloop.association.properties.*` as tags, and
the older flattened `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` content and `llm.*` names.
"""

from __future__ import annotations

from typing import Any

from tokentrace import semconv
from tokentrace.ingest.normalize import genai, messages
from tokentrace.ingest.normalize.fields import fill_tags, text
from tokentrace.ingest.raw import RawSpan

PRIORITY = 20

_PROPERTIES = "traceloop.association.properties."
_SCOPES = ("traceloop", "opentelemetry.instrumentation.openai.v1", "opentelemetry.instrumentation.anthropic")
_KINDS = {"agent": "invoke_agent", "tool": "execute_tool"}
_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}


def matches(span: RawSpan) -> bool:
    if span.scope_name.startswith(_SCOPES):
        return True
    return any(key.startswith("traceloop.") for key in span.attributes)


def _legacy(attrs: dict[str, Any]) -> None:
    """Older releases: llm.request.type, llm.usage.*, flattened gen_ai.prompt/completion."""
    request_type = attrs.pop("llm.request.type", None)
    if semconv.OPERATION not in attrs and request_type in _REQUEST_TYPES:
        attrs[semconv.OPERATION] = _REQUEST_TYPES[request_type]
    for old, new in (
        ("llm.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
        ("llm.usage.completion_tokens", "gen_ai.usage.output_tokens"),
    ):
        if old in attrs:
            attrs.setdefault(new, attrs.pop(old))
    if semconv.INPUT_MESSAGES not in attrs:
        prompt = _flattened(attrs, "gen_ai.prompt")
        if prompt:
            attrs[semconv.INPUT_MESSAGES] = prompt
    if semconv.OUTPUT_MESSAGES not in attrs:
        completion = _flattened(attrs, "gen_ai.completion")
        if completion:
            attrs[semconv.OUTPUT_MESSAGES] = completion


def _flattened(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    # gen_ai.prompt.0.role / .content: the same shape as OpenInference's, without ".message".
    renamed = {}
    for key in [k for k in attrs if k.startswith(prefix + ".")]:
        index, _, rest = key[len(prefix) + 1 :].partition(".")
        if index.isdigit() and rest:
            renamed[f"{prefix}.{index}.message.{rest}"] = attrs.pop(key)
    return messages.take_flattened(renamed, prefix) if renamed else None


def apply(span: RawSpan, row: dict[str, Any]) -> None:
    """Fill `row` from Traceloop's attributes, then the gen_ai.* ones."""
    attrs = span.attributes
    _legacy(attrs)
    genai.apply(span, row)
    kind = attrs.get("traceloop.span.kind")
    entity = text(attrs.get("traceloop.entity.name"))
    if kind in _KINDS:
        row["operation"] = _KINDS[kind]
        if kind == "agent":
            row["agent_name"] = row["agent_name"] or entity
        else:
            row["tool_name"] = row["tool_name"] or entity
    properties = {k[len(_PROPERTIES) :]: v for k, v in attrs.items() if k.startswith(_PROPERTIES)}
    if properties:
        fill_tags(row, properties)
    if row["user_id"] is None:
        row["user_id"] = text(attrs.get("gen_ai.user"))
