"""OpenInference (Arize Phoenix): llm.*, embedding.*, openinference.span.kind.

Token counts follow the OTel meaning (prompt includes cache reads and writes, for Anthropic
too). The request model and parameters sit inside the `llm.invocation_parameters` JSON;
`llm.model_name` is the response model. Messages are flattened into indexed attributes.
"""

from __future__ import annotations

import re
from typing import Any

from tokentrace import semconv, vocab
from tokentrace.ingest.normalize import messages
from tokentrace.ingest.normalize.attrmap import AttributeMap
from tokentrace.ingest.normalize.fields import fill_tags, integer, json_object, number, text, token_count
from tokentrace.ingest.raw import RawSpan

PRIORITY = 10

_KINDS = {
    "LLM": "chat",
    "EMBEDDING": "embeddings",
    "TOOL": "execute_tool",
    "AGENT": "invoke_agent",
    "RETRIEVER": "retrieval",
    "RERANKER": "retrieval",
}
_TOKENS = (
    ("input_tokens", "llm.token_count.prompt"),
    ("output_tokens", "llm.token_count.completion"),
    ("total_tokens", "llm.token_count.total"),
    ("cache_read_tokens", "llm.token_count.prompt_details.cache_read"),
    ("cache_write_tokens", "llm.token_count.prompt_details.cache_write"),
    ("reasoning_tokens", "llm.token_count.completion_details.reasoning"),
    ("input_audio_tokens", "llm.token_count.prompt_details.audio"),
    ("output_audio_tokens", "llm.token_count.completion_details.audio"),
)
_MAP = AttributeMap(
    {
        "kind": ("openinference.span.kind",),
        "provider": ("llm.provider", "llm.system"),
        "request_model": ("llm.request.model_name",),
        "response_model": ("llm.response.model_name", "llm.model_name", "embedding.model_name"),
        "parameters": ("llm.invocation_parameters", "embedding.invocation_parameters"),
        "finish_reason": ("llm.finish_reason",),
        "metadata": ("metadata",),
        "tool_name": ("tool.name",),
        "agent_name": ("agent.name",),
        "node": ("graph.node.id",),
        **{field: (key,) for field, key in _TOKENS},
    },
    keep=frozenset(
        {"openinference.span.kind", "llm.provider", "llm.system", "llm.finish_reason", "metadata"}
    ),
)
_FIRST_TOKEN_EVENT = "First Token Stream Event"
_AGENT_RUN = re.compile(r"^\w*Agent(Workflow)?\.run$")


def matches(span: RawSpan) -> bool:
    return span.scope_name.startswith("openinference") or "openinference.span.kind" in span.attributes


def apply(span: RawSpan, row: dict[str, Any]) -> None:
    """Fill `row` from OpenInference attributes; flattened messages become content."""
    attrs = span.attributes
    found = _MAP.extract(attrs)
    get = found.get
    params = json_object(get("parameters"))
    params = params if isinstance(params, dict) else {}
    answer = None
    if isinstance(params.get("id"), str) and "created_at" in params:
        # The Agents SDK's instrumentation puts the Responses API's answer here, not the request:
        # its model is the response model and its id the response id.
        answer, params = params, {k: v for k, v in params.items() if k not in ("id", "model")}

    row["operation"] = _KINDS.get(str(get("kind") or "").upper(), "other")
    if row["operation"] == "other" and _AGENT_RUN.match(span.name):
        row["operation"] = "invoke_agent"  # LlamaIndex's agents run as a CHAIN named `FunctionAgent.run`
    if row["operation"] == "invoke_agent":
        # The agent's name: its own attribute, the graph node (CrewAI), or the span name before
        # the method (smolagents' `weather_agent.run`, CrewAI's `weather_agent._execute_core`).
        row["agent_name"] = text(get("agent_name")) or text(get("node"))
        if row["agent_name"] is None and not _AGENT_RUN.match(span.name):
            row["agent_name"] = span.name.partition(".")[0] or None
    row["provider"] = vocab.provider(get("provider"))
    row["response_model"] = text(get("response_model"))
    row["request_model"] = text(get("request_model")) or text(params.get("model"))
    if answer is not None:
        row["response_model"] = row["response_model"] or text(answer.get("model"))
        row["response_id"] = text(answer["id"])
    if row["operation"] == "embeddings" and row["request_model"] is None:
        row["request_model"] = row["response_model"]
    for field, key in _TOKENS:
        row[field] = token_count(get(field), key)

    row["finish_reason"] = vocab.finish_reason(get("finish_reason"))
    row["temperature"] = number(params.get("temperature"))
    row["top_p"] = number(params.get("top_p"))
    row["max_tokens"] = integer(params.get("max_completion_tokens", params.get("max_tokens")))
    row["seed"] = integer(params.get("seed"))
    stream = params.get("stream")
    row["streaming"] = stream if isinstance(stream, bool) else None
    first_token = next((e.time_unix_nano for e in span.events if e.name == _FIRST_TOKEN_EVENT), None)
    if first_token:
        row["ttft_ms"] = max(first_token - span.start_unix_nano, 0) / 1e6
    row["tool_name"] = text(get("tool_name"))

    metadata = json_object(get("metadata"))
    if isinstance(metadata, dict):
        fill_tags(row, metadata)

    inputs = messages.take_flattened(attrs, "llm.input_messages")
    outputs = messages.take_flattened(attrs, "llm.output_messages")
    if inputs:
        attrs[semconv.INPUT_MESSAGES] = inputs
        attrs.pop("input.value", None)  # the raw request: the messages above say it
    response = json_object(attrs.get("output.value"))
    if isinstance(response, dict):
        row["response_id"] = text(response.get("id")) or row["response_id"]
    if outputs:
        if row["finish_reason"]:
            for message in outputs:
                message["finish_reason"] = row["finish_reason"]
        attrs[semconv.OUTPUT_MESSAGES] = outputs
        attrs.pop("output.value", None)
    for key in [k for k in attrs if k.startswith("embedding.embeddings.")]:
        if key.endswith(".embedding.vector"):
            del attrs[key]  # vectors are not worth storing
