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
    "invoke_workflow": "invoke_workflow",
    "workflow": "invoke_workflow",
    "retrieval": "retrieval",
    "retrieve": "retrieval",
    "retriever": "retrieval",
}

# The operation names the conventions put first in a span's name.
_NAMED_OPERATIONS = {
    name: _OPERATIONS[name]
    for name in (
        "chat",
        "text_completion",
        "embeddings",
        "generate_content",
        "execute_tool",
        "invoke_agent",
        "create_agent",
        "invoke_workflow",
    )
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


def operation_from_name(name: str) -> str | None:
    """The operation a span name in the GenAI conventions' form `{operation} {target}` states
    (`invoke_agent planner`, `execute_tool get_weather`); None for any other name."""
    head, space, target = name.partition(" ")
    return _NAMED_OPERATIONS.get(head) if space and target else None


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


# Names agent frameworks and routers put where the provider belongs (Strands reports
# `strands-agents`): they say who made the call, never who served it.
_NOT_PROVIDERS = frozenset(
    {
        "strands-agents",
        "strands",
        "litellm",
        "langchain",
        "langgraph",
        "llama_index",
        "llama-index",
        "llamaindex",
        "crewai",
        "pydantic_ai",
        "pydantic-ai",
        "smolagents",
        "google_adk",
        "adk",
        "gcp_vertex_agent",
        "agent_framework",
        "microsoft_agent_framework",
        "openai_agents",
        "openai-agents",
        "autogen",
        "semantic_kernel",
        "haystack",
        "dspy",
    }
)
# A router's `provider/model` prefix (LiteLLM, ADK, CrewAI, OpenRouter users) → who serves it.
_ROUTES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure_openai",
    "azure_ai": "azure_ai_inference",
    "bedrock": "aws_bedrock",
    "vertex_ai": "vertex_ai",
    "gemini": "gemini",
    "openrouter": "openrouter",
    "groq": "groq",
    "mistral": "mistral",
    "ollama": "ollama",
    "ollama_chat": "ollama",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "deepseek": "deepseek",
    "xai": "xai",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "perplexity": "perplexity",
    "hosted_vllm": "vllm",
}
# LiteLLM's route variants that sit between the provider and the model id.
_ROUTE_VARIANTS = ("converse/", "invoke/", "chat/")
# Who serves a host's API, when a span names the server it called.
_HOSTS = (
    (re.compile(r"(^|\.)api\.openai\.com$"), "openai"),
    (re.compile(r"(^|\.)api\.anthropic\.com$"), "anthropic"),
    (re.compile(r"\.openai\.azure\.com$"), "azure_openai"),
    (re.compile(r"\.services\.ai\.azure\.com$"), "azure_ai_inference"),
    (re.compile(r"^generativelanguage\.googleapis\.com$"), "gemini"),
    (re.compile(r"aiplatform\.googleapis\.com$"), "vertex_ai"),
    (re.compile(r"^bedrock-runtime\..*\.amazonaws\.com$"), "aws_bedrock"),
    (re.compile(r"(^|\.)api\.mistral\.ai$"), "mistral"),
    (re.compile(r"(^|\.)api\.groq\.com$"), "groq"),
    (re.compile(r"(^|\.)openrouter\.ai$"), "openrouter"),
    (re.compile(r"(^|\.)api\.deepseek\.com$"), "deepseek"),
    (re.compile(r"(^|\.)api\.x\.ai$"), "xai"),
    (re.compile(r"(^|\.)api\.together\.(xyz|ai)$"), "together"),
    (re.compile(r"(^|\.)api\.fireworks\.ai$"), "fireworks"),
    (re.compile(r"(^|\.)api\.cohere\.(com|ai)$"), "cohere"),
)
# Model families only one provider serves under these names (others rename them: Bedrock's
# `anthropic.claude-…`, Azure deployments), for spans that name no provider.
_FAMILIES = (
    (
        # gpt-oss is open weights: served by many, named `openai/gpt-oss-…` by some.
        re.compile(
            r"^(gpt-(?!oss)|o[1-9]\b|o[1-9]-|chatgpt-|text-embedding-|dall-e|whisper-|tts-|omni-moderation)"
        ),
        "openai",
    ),
    (re.compile(r"^claude-"), "anthropic"),
    (re.compile(r"^gemini-"), "gemini"),
    (re.compile(r"^(mistral-|mixtral-|codestral-|ministral-|magistral-|pixtral-|devstral-)"), "mistral"),
    (re.compile(r"^command(-|$)"), "cohere"),
    (re.compile(r"^grok-"), "xai"),
    (re.compile(r"^deepseek-"), "deepseek"),
)


def is_framework(name: str | None) -> bool:
    """True for a framework's or router's name reported as the provider."""
    return name is not None and name in _NOT_PROVIDERS


def split_route(model: str | None, provider: str | None) -> tuple[str | None, str | None]:
    """(provider, model) of a router's `provider/model` name; (None, model) when the name is no
    route, or when the span's own provider is another real one (Groq serving `openai/gpt-oss-…`,
    OpenRouter's `anthropic/…` ids: the slash is part of that provider's model id) and the model
    is not of the routed provider's own family (an instrumentation that calls every LiteLLM call
    `openai` while the name says `anthropic/claude-…`)."""
    if not model or "/" not in model:
        return None, model
    prefix, _, rest = model.partition("/")
    routed = _ROUTES.get(prefix.lower())
    if routed is None or not rest:
        return None, model
    for variant in _ROUTE_VARIANTS:
        rest = rest.removeprefix(variant)
    if (
        provider is not None
        and provider != routed
        and not is_framework(provider)
        and serving_provider(None, rest) != routed
    ):
        return None, model
    return routed, rest


def serving_provider(server_address: object, model: str | None) -> str | None:
    """Who served a call that names no provider: its server's host, else its model family."""
    if isinstance(server_address, str) and server_address:
        host = server_address.lower()
        for pattern, name in _HOSTS:
            if pattern.search(host):
                return name
    if model:
        lowered = model.lower()
        for pattern, name in _FAMILIES:
            if pattern.search(lowered):
                return name
    return None
