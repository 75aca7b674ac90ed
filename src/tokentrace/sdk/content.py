"""Message content capture: off by default; when on, every text is redacted and capped
before it is put on a span (so it never leaves the process unredacted).

Turned on by `init(capture_content=True)` or the standard environment variable
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT (true, span_only or span_and_event).
Messages are recorded as the latest GenAI conventions say: gen_ai.system_instructions,
gen_ai.input.messages and gen_ai.output.messages, JSON in the parts format.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tokentrace.redaction import redact_defaults

ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_MAX_CHARS = 16_384
_TEXT_KEYS = ("content", "arguments", "response")


@dataclass(frozen=True)
class ContentPolicy:
    enabled: bool = False
    redact: Callable[[str], str] | None = redact_defaults
    max_chars: int = DEFAULT_MAX_CHARS  # per text part, after redaction


_policy = ContentPolicy()


def enabled_by_env() -> bool:
    value = os.environ.get(ENV, "").strip().lower()
    return value in ("true", "1", "yes", "span_only", "span_and_event")


def configure(policy: ContentPolicy) -> None:
    global _policy
    _policy = policy


def capturing() -> bool:
    """Whether prompts and completions are recorded."""
    return _policy.enabled


def clean(text: str) -> str:
    """A text as it may leave the process: redacted, then cut to the size cap."""
    policy = _policy
    if policy.redact is not None:
        text = policy.redact(text)
    if len(text) > policy.max_chars:
        cut = len(text) - policy.max_chars
        text = f"{text[: policy.max_chars]}…[{cut} more characters not recorded]"
    return text


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict | list):
        return clean(orjson.dumps(value, default=str).decode())
    return value


def _clean_parts(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for part in parts:
        for key in _TEXT_KEYS:
            if part.get(key) is not None:
                part[key] = _cleaned(part[key])
    return parts


def _clean_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for message in messages:
        _clean_parts(message.get("parts", []))
    return messages


def record(
    span: Any,
    *,
    system: list[dict[str, Any]] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> None:
    """Put the messages on the span, redacted and capped; nothing unless capture is on."""
    if not _policy.enabled:
        return
    if system:
        span.set_attribute("gen_ai.system_instructions", orjson.dumps(_clean_parts(system)).decode())
    if inputs is not None:
        span.set_attribute("gen_ai.input.messages", orjson.dumps(_clean_messages(inputs)).decode())
    if outputs is not None:
        span.set_attribute("gen_ai.output.messages", orjson.dumps(_clean_messages(outputs)).decode())


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


def tool_call_part(ident: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": ident, "name": name, "arguments": arguments}


def tool_response_part(ident: Any, response: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": ident, "response": response}
