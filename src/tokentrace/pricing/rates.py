"""Per-token rates of one model, and the cost of one call at those rates."""

from __future__ import annotations

from dataclasses import dataclass

from tokentrace import semconv

#: A unit price in USD per million tokens: the base rate and "cliff" tiers, where
#: crossing a tier's start (total input tokens) applies its rate to all tokens.
UnitPrice = tuple[float, tuple[tuple[int, float], ...]]


def flat(rate: float) -> UnitPrice:
    """A unit price with no tiers."""
    return (rate, ())


def _rate(price: UnitPrice, total_input: int) -> float:
    base, tiers = price
    for start, tier_rate in reversed(tiers):
        if total_input > start:
            return tier_rate
    return base


@dataclass(frozen=True)
class Rates:
    """The prices in force for one model, with where they came from."""

    model: str  # the price's model id (what the span's model matched)
    provider: str  # the price's provider id
    source: str  # e.g. "genai-prices 0.2.3" or "overrides prices.toml@1a2b3c4d"
    input: UnitPrice
    output: UnitPrice
    cache_read: UnitPrice | None = None  # None: billed at the input rate
    cache_write: UnitPrice | None = None  # None: billed at the input rate
    multiplier: float = 1.0  # negotiated discount, e.g. 0.8
    conditions: str | None = None  # the price variant used, e.g. "service_tier=flex" (None: list price)

    def provenance(self) -> dict[str, str]:
        """The span attributes that say which price costed it."""
        said = {
            semconv.PRICE_MODEL: self.model,
            semconv.PRICE_PROVIDER: self.provider,
            semconv.PRICE_SOURCE: self.source,
        }
        if self.conditions is not None:
            said[semconv.PRICE_CONDITIONS] = self.conditions
        return said

    def cost(
        self,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None,
        cache_write_tokens: int | None,
    ) -> float:
        """USD for one call. input_tokens includes cached read and cache-write tokens."""
        total_in = input_tokens or 0
        cached = cache_read_tokens or 0
        written = cache_write_tokens or 0
        # Never let inconsistent sources make the uncached share negative.
        uncached = max(total_in - cached - written, 0)
        usd = uncached * _rate(self.input, total_in)
        usd += cached * _rate(self.cache_read or self.input, total_in)
        usd += written * _rate(self.cache_write or self.input, total_in)
        usd += (output_tokens or 0) * _rate(self.output, total_in)
        return usd * self.multiplier / 1_000_000
