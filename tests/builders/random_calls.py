"""Seeded random chat calls as RawSpans, over a few models, tenants, features and users."""

from __future__ import annotations

import random
from datetime import datetime

from tokentrace.ingest.raw import RawSpan

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-20241022")


def to_ns(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def random_call(rng: random.Random, n: int, at: datetime, parent: str = "", **extra) -> RawSpan:
    model = rng.choice(MODELS)
    duration_ms = rng.lognormvariate(6.5, 0.8)
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic" if model.startswith("claude") else "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": rng.randint(50, 4000),
        "gen_ai.usage.output_tokens": rng.randint(1, 800),
        "tokentrace.tenant_id": rng.choice(("acme", "globex", "initech")),
        "tokentrace.feature": rng.choice(("chat", "search")),
        "tokentrace.user_id": f"u{rng.randint(1, 30)}",
    }
    if rng.random() < 0.3:
        attributes["gen_ai.request.stream"] = True
        attributes["tokentrace.ttft_ms"] = duration_ms * rng.uniform(0.05, 0.5)
    status = 0
    if rng.random() < 0.05:
        attributes["error.type"] = rng.choice(("rate_limit", "timeout"))
        attributes["tokentrace.retry_attempt"] = rng.randint(0, 2)
        status = 2
    attributes.update(extra)
    start = to_ns(at)
    return RawSpan(
        f"{n:032x}",
        f"{n:016x}",
        parent,
        f"chat {model}",
        3,
        start,
        start + int(duration_ms * 1e6),
        status,
        "",
        attributes,
        {"service.name": "support-bot"},
    )
