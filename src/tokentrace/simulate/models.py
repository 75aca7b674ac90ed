"""What the simulated provider knows of each model: context window, reasoning, latency profile."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelProfile:
    context_window: int
    reasoning: bool = False
    ttft_ms: float = 300.0  # first token, before input-length cost
    per_input_ms: float = 0.02  # added to TTFT per input token
    per_output_ms: float = 15.0  # time per output token
    embedding_dims: int = 0


_PROFILES: tuple[tuple[str, ModelProfile], ...] = (
    (r"^text-embedding-3-large", ModelProfile(8191, embedding_dims=3072, ttft_ms=40, per_output_ms=0)),
    (r"^text-embedding", ModelProfile(8191, embedding_dims=1536, ttft_ms=30, per_output_ms=0)),
    (r"^(o\d|gpt-5)", ModelProfile(200_000, reasoning=True, ttft_ms=1500, per_output_ms=8)),
    (r"^gpt-4o-mini", ModelProfile(128_000, ttft_ms=250, per_output_ms=7)),
    (r"^gpt-4\.1-nano", ModelProfile(1_047_576, ttft_ms=200, per_output_ms=5)),
    (r"^gpt-4\.1", ModelProfile(1_047_576, ttft_ms=400, per_output_ms=12)),
    (r"^gpt-4o", ModelProfile(128_000, ttft_ms=400, per_output_ms=14)),
    (r"^gpt-3\.5", ModelProfile(16_385, ttft_ms=250, per_output_ms=6)),
    (r"^claude-.*haiku", ModelProfile(200_000, ttft_ms=350, per_output_ms=9)),
    (r"^claude-.*opus", ModelProfile(200_000, ttft_ms=900, per_output_ms=30)),
    (r"^claude", ModelProfile(200_000, ttft_ms=600, per_output_ms=18)),
)
DEFAULT = ModelProfile(128_000)


def profile(model: str) -> ModelProfile:
    for pattern, found in _PROFILES:
        if re.match(pattern, model):
            return found
    return DEFAULT


#: Hidden reasoning tokens a reasoning model spends on an answer, by the request's effort (none
#: given reads as medium, the API's default). They are billed as output tokens.
REASONING_EFFORTS = {"minimal": (0, 32), "low": (16, 128), "medium": (64, 512), "high": (1536, 6144)}


def reasoning_effort_error(model: ModelProfile, effort: object, parameter: str) -> str | None:
    """Why the API refuses a request's reasoning effort (OpenAI's 400), or None."""
    if effort is None:
        return None
    if not model.reasoning:
        return f"Unsupported parameter: '{parameter}' is not supported with this model."
    if not isinstance(effort, str) or effort not in REASONING_EFFORTS:
        allowed = ", ".join(f"'{e}'" for e in REASONING_EFFORTS)
        return f"Invalid value: {effort!r}. Supported values are: {allowed}."
    return None


def reasoning_tokens(rng: random.Random, model: ModelProfile, effort: str | None) -> int:
    """The reasoning tokens of one answer (0 for a model that does not reason)."""
    if not model.reasoning:
        return 0
    low, high = REASONING_EFFORTS[effort or "medium"]
    return rng.randint(low, high)
