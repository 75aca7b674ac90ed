"""A provider's own usage object (OpenAI chat or Responses, Anthropic, Langfuse's generic keys),
as some families pass it through in a JSON string: Langfuse's `usage_details`, Logfire's
`gen_ai.usage.raw`."""

from __future__ import annotations

from typing import Any

from tokentrace.ingest.normalize.fields import dig, token_count

_PATHS = {
    "input_tokens": (("prompt_tokens",), ("input_tokens",), ("input",)),
    "output_tokens": (("completion_tokens",), ("output_tokens",), ("output",)),
    "total_tokens": (("total_tokens",), ("total",)),
    "cache_read_tokens": (
        ("prompt_tokens_details", "cached_tokens"),
        ("input_tokens_details", "cached_tokens"),
        ("cache_read_input_tokens",),
        ("input_cached_tokens",),
    ),
    "cache_write_tokens": (("cache_creation_input_tokens",),),
    "reasoning_tokens": (
        ("completion_tokens_details", "reasoning_tokens"),
        ("output_tokens_details", "reasoning_tokens"),
    ),
    # OpenAI chat (prompt/completion details), Realtime (input/output_token_details, cached
    # tokens by modality) and image generation (input_tokens_details, its output all image)
    "input_audio_tokens": (
        ("prompt_tokens_details", "audio_tokens"),
        ("input_token_details", "audio_tokens"),
    ),
    "output_audio_tokens": (
        ("completion_tokens_details", "audio_tokens"),
        ("output_token_details", "audio_tokens"),
    ),
    "cache_audio_read_tokens": (("input_token_details", "cached_tokens_details", "audio_tokens"),),
    "input_image_tokens": (
        ("input_tokens_details", "image_tokens"),
        ("input_token_details", "image_tokens"),
    ),
    "output_image_tokens": (("output_tokens_details", "image_tokens"),),
    "cache_image_read_tokens": (("input_token_details", "cached_tokens_details", "image_tokens"),),
}


def read(usage: dict[str, Any], source: str) -> dict[str, int | None]:
    """{canonical token field: count or None}; a reported zero stays a zero."""
    counts = {}
    for field, paths in _PATHS.items():
        value = next((v for path in paths if (v := dig(usage, *path)) is not None), None)
        counts[field] = token_count(value, f"{source} {field}")
    return counts


def input_excludes_cache(usage: dict[str, Any]) -> bool:
    """Anthropic's raw usage: its input_tokens leave out cache reads and writes."""
    return "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage
