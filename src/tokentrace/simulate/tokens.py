"""Deterministic token counts and generated text: tests compute the same truth the provider serves."""

from __future__ import annotations

import hashlib
import math
import random
import re
from typing import Any

import orjson

_WORDS = [
    "the",
    "order",
    "was",
    "shipped",
    "on",
    "monday",
    "and",
    "should",
    "arrive",
    "within",
    "three",
    "business",
    "days",
    "please",
    "check",
    "the",
    "tracking",
    "link",
    "in",
    "your",
    "email",
    "if",
    "the",
    "package",
    "does",
    "not",
    "arrive",
    "we",
    "will",
    "issue",
    "a",
    "refund",
    "or",
    "send",
    "a",
    "replacement",
    "at",
    "no",
    "cost",
    "to",
    "you",
    "thank",
    "you",
    "for",
    "your",
    "patience",
]


def count_text(text: str) -> int:
    """Tokens in a text: one per four characters, at least one for non-empty text."""
    return math.ceil(len(text) / 4) if text else 0


def content_text(content: Any) -> str:
    """The text of a message content: a string, or a list of parts/blocks with text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, dict):
                for key in ("text", "content", "input", "arguments"):
                    value = part.get(key)
                    if isinstance(value, str):
                        pieces.append(value)
                    elif value is not None:
                        pieces.append(orjson.dumps(value).decode())
            elif isinstance(part, str):
                pieces.append(part)
        return " ".join(pieces)
    return orjson.dumps(content).decode()


def count_message(message: dict[str, Any]) -> int:
    """A chat message: its text plus 4 tokens of framing (role, separators), tool calls included."""
    tokens = 4 + count_text(content_text(message.get("content")))
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        tokens += count_text(function.get("name", "")) + count_text(function.get("arguments", ""))
    return tokens


def count_audio(messages: list[dict[str, Any]]) -> int:
    """Audio input tokens of chat messages' `input_audio` parts: ten a second of 16 kHz 16-bit
    mono audio (3,200 bytes a token), counted from the base64 data's length."""
    tokens = 0
    for message in messages:
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and part.get("type") == "input_audio":
                data = (part.get("input_audio") or {}).get("data") or ""
                tokens += max(1, len(data) * 3 // 4 // 3200)
    return tokens


def count_tools(tools: list[dict[str, Any]] | None) -> int:
    return count_text(orjson.dumps(tools).decode()) if tools else 0


def rng_for(*parts: Any) -> random.Random:
    """A random generator seeded by the request's content, so answers repeat exactly."""
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str)).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def generate_words(rng: random.Random, count: int) -> list[str]:
    """`count` words; each word (with its leading space) is one output token."""
    start = rng.randrange(len(_WORDS))
    return [_WORDS[(start + i) % len(_WORDS)] for i in range(count)]


_CONTEXT = re.compile(r"<context>(.*?)</context>", re.S)


def answer_words(rng: random.Random, count: int, instructions: str) -> list[str]:
    """`count` words of an answer. Instructions that carry documents in <context>…</context>
    are answered from them, word for word (a model that cites what it retrieved: a judge finds
    it grounded); others get generated words."""
    found = _CONTEXT.search(instructions)
    cited = found.group(1).split() if found else []
    if not cited:
        return generate_words(rng, count)
    return [cited[i % len(cited)] for i in range(count)]


def answer_length(
    rng: random.Random, max_tokens: int | None, low: int = 12, high: int = 160
) -> tuple[int, bool]:
    """(output tokens, truncated): the natural length, cut at max_tokens when smaller."""
    natural = rng.randint(low, high)
    if max_tokens is not None and max_tokens < natural:
        return max_tokens, True
    return natural, False
