"""Pricing: look up the price of a model at an instant and cost canonical spans at ingest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokentrace.pricing.book import PriceBook
    from tokentrace.pricing.rates import Rates

__all__ = ["PriceBook", "Rates"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the book loads genai-prices' snapshot (~0.1 s), which the CLI's
    # commands that only format amounts (pricing.amounts) never need.
    if name == "PriceBook":
        from tokentrace.pricing.book import PriceBook

        return PriceBook
    if name == "Rates":
        from tokentrace.pricing.rates import Rates

        return Rates
    raise AttributeError(name)
