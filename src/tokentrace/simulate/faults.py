"""Per-request behaviour chosen by the caller with the `x-simulate` header.

x-simulate: error=429; retry_after_ms=50      always answer 429 (or 500, 503, 400, 401, 529)
x-simulate: fail_first=2                      the first 2 attempts of this exact request 429
x-simulate: ttft_ms=800; tpot_ms=20           slow first token, then per-token pacing
x-simulate: max_output=40                     natural answer length of 40 tokens
x-simulate: refuse=1                          the model refuses (OpenAI `refusal`, Anthropic stop_reason)
x-simulate: malformed_json=1                  asked for JSON, the model answers broken JSON
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Directives:
    error: int | None = None
    retry_after_ms: int = 20
    fail_first: int = 0
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    max_output: int | None = None
    rate_limit_rate: float = 0.0
    refuse: bool = False
    malformed_json: bool = False


def parse(header: str | None) -> Directives:
    """Read the header; unknown or malformed entries are ignored (the request still runs)."""
    if not header:
        return Directives()
    values: dict[str, float] = {}
    for item in header.split(";"):
        key, _, raw = item.partition("=")
        try:
            values[key.strip()] = float(raw.strip())
        except ValueError:
            continue
    error = values.get("error")
    return Directives(
        error=int(error) if error is not None else None,
        retry_after_ms=int(values.get("retry_after_ms", 20)),
        fail_first=int(values.get("fail_first", 0)),
        ttft_ms=values.get("ttft_ms"),
        tpot_ms=values.get("tpot_ms"),
        max_output=int(values["max_output"]) if "max_output" in values else None,
        rate_limit_rate=min(max(values.get("rate_limit_rate", 0.0), 0.0), 1.0),
        refuse=values.get("refuse", 0) > 0,
        malformed_json=values.get("malformed_json", 0) > 0,
    )
