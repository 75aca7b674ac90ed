"""Map the many spellings seen in the wild onto the canonical vocabularies."""

from __future__ import annotations

import re

_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure_openai",
    "az.ai.openai": "azure_openai",
    "azure_openai": "azure_openai",
    "azure": "azure_openai",
    "azure.ai.inference": "azure_ai_inference",
    "az.ai.inference": "azure_ai_inference",
    "aws.bedrock": "aws_bedrock",
    "aws_bedrock": "aws_bedrock",
    "bedrock": "aws_bedrock",
    "gcp.gemini": "gemini",
    "gcp.gen_ai": "gemini",
    "gemini": "gemini",
    "google": "gemini",
    "gcp.vertex_ai": "vertex_ai",
    "vertex_ai": "vertex_ai",
    "vertexai": "vertex_ai",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "x_ai": "xai",
    "xai": "xai",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "ibm.watsonx.ai": "ibm_watsonx",
    "together": "together",
    "together_ai": "together",
    "fireworks": "fireworks",
    "ollama": "ollama",
    "openrouter": "openrouter",
}

_OPERATIONS = {
    "chat": "chat",
    "chat_completion": "chat",
    "generate_content": "chat",
    "text_completion": "text_completion",
    "completion": "text_completion",
    "embeddings": "embeddings",
    "embedding": "embeddings",
    "execute_tool": "execute_tool",
    "tool": "execute_tool",
    "invoke_agent": "invoke_agent",
    "create_agent": "invoke_agent",
    "agent": "invoke_agent",
    "retrieval": "retrieval",
    "retrieve": "retrieval",
    "retriever": "retrieval",
}

_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "completed": "stop",
    "eos": "stop",
    "pause_turn": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "incomplete": "length",
    "model_context_window_exceeded": "length",
    "tool_calls": "tool_calls",
    "tool_call": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "safety": "content_filter",
    "refusal": "content_filter",
    "recitation": "content_filter",
    "error": "error",
}

_ERROR_PATTERNS = (
    ("budget", re.compile(r"^budget")),
    ("cancelled", re.compile(r"^(cancelled|canceled|client.?closed)")),
    (
        "context_length",
        re.compile(r"context.?(length|window)|prompt.?(is.?)?too.?long|maximum context|too many tokens"),
    ),
    ("rate_limit", re.compile(r"rate.?limit|too.?many.?requests|resource.?exhausted|quota|\b429\b")),
    ("timeout", re.compile(r"time.?out|timed.?out|deadline")),
    ("auth", re.compile(r"auth|permission|forbidden|api.?key|\b40[13]\b")),
    ("content_filter", re.compile(r"content.?(filter|policy)|safety|moderation")),
    (
        "server_error",
        re.compile(
            r"internal.?server|server.?error|api.?error|overloaded|unavailable|bad.?gateway|\b5\d\d\b"
        ),
    ),
    ("bad_request", re.compile(r"bad.?request|invalid.?request|unprocessable|not.?found|\b4\d\d\b")),
)


def provider(raw: object) -> str | None:
    """Canonical provider name (openai, anthropic, …); unknown names are kept, lowercased."""
    if not isinstance(raw, str) or not raw:
        return None
    key = raw.strip().lower()
    return _PROVIDERS.get(key, key.replace(".", "_").replace(" ", "_"))


def operation(raw: object) -> str | None:
    """Canonical operation, or None when the value is not one we know."""
    if not isinstance(raw, str):
        return None
    return _OPERATIONS.get(raw.strip().lower())


def finish_reason(raw: object) -> str | None:
    """Canonical finish reason of the first choice: stop, length, tool_calls, content_filter, error, other."""
    if isinstance(raw, list | tuple):
        raw = raw[0] if raw else None
    if not isinstance(raw, str) or not raw:
        return None
    return _FINISH.get(raw.strip().lower(), "other")


def error_type(*clues: object, http_status: int | None = None) -> str:
    """Canonical error type from error.type spellings, exception types and messages, or HTTP status.

    `<class 'openai.RateLimitError'>`, `RateLimitError` and `rate_limit_error` all give
    rate_limit. The first clue that matches a pattern decides; the status code is the fallback.
    """
    for clue in clues:
        if not isinstance(clue, str) or not clue:
            continue
        # Split CamelCase so "RateLimitError" reads as "rate limit error".
        text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", clue).lower()
        for name, pattern in _ERROR_PATTERNS:
            if pattern.search(text):
                return name
    if http_status is not None:
        if http_status == 429:
            return "rate_limit"
        if http_status in (401, 403):
            return "auth"
        if http_status in (408, 504):
            return "timeout"
        if http_status >= 500:
            return "server_error"
        if http_status >= 400:
            return "bad_request"
    return "other"
