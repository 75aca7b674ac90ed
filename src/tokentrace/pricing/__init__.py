"""Pricing: look up the price of a model at an instant and cost canonical spans at ingest."""

from tokentrace.pricing.book import PriceBook
from tokentrace.pricing.rates import Rates

__all__ = ["PriceBook", "Rates"]
