"""The price book: which price is in force for a (provider, model, instant), and costing columns.

Rates are resolved once per (provider, model, half hour) and cached: genai-prices' own
`calc_price` costs ~100 µs a call, too slow for the ingest path, while cached rates
cost a dict lookup and a few multiplications per span. Half-hour granularity keeps
time-of-day prices (off-peak discounts start on half hours) right.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tokentrace.pricing.overrides import Overrides
from tokentrace.pricing.rates import Modalities, Rates, UnitPrice

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, TieredPrices

# genai-prices (~11 MB, ~90 ms to import) is imported when a price is first looked up: a server
# whose ingest workers price the spans need not hold it while idle.

_HALF_HOUR_NS = 1_800_000_000_000

#: Canonical provider → genai-prices provider id.
_PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure_openai": "azure",
    "aws_bedrock": "aws",
    "gemini": "google",
    "vertex_ai": "google",
    "mistral": "mistral",
    "xai": "x-ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "together": "together",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
}


def _unit(value: Decimal | TieredPrices | None) -> UnitPrice | None:
    from genai_prices.types import TieredPrices

    if value is None:
        return None
    if isinstance(value, TieredPrices):
        return (float(value.base), tuple((t.start, float(t.price)) for t in value.tiers))
    return (float(value), ())


def price_context(service_tier: str | None) -> dict[str, str] | None:
    """genai-prices' conditions for a call served at `service_tier`: batch is its own
    processing mode (half price at OpenAI and Anthropic), any other tier a `service_tier`
    (flex, priority, …; default and standard match no variant: the list price)."""
    if not service_tier:
        return None
    return {"processing": "batch"} if service_tier == "batch" else {"service_tier": service_tier}


def _conditions(found_model: ModelInfo, context: dict[str, str] | None, at: datetime) -> str | None:
    """The variants of the model's price that `context` selects and that change a price, as
    `service_tier=flex` (provenance); None when the list price applies."""
    if not context:
        return None
    used = []
    for variant in found_model.price_variants or ():
        if variant.constraint is not None and not variant.constraint.active(at):
            continue
        if all(context.get(key) == value for key, value in variant.when.items()) and any(
            price is not None for price in variant.prices.__dict__.values()
        ):
            used += [f"{key}={value}" for key, value in variant.when.items()]
    return ",".join(used) or None


def _catalog_rates(provider: str, model: str, at_ns: int, service_tier: str | None = None) -> Rates | None:
    import genai_prices
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    provider_id = _PROVIDER_IDS.get(provider)
    try:
        found_provider, found_model = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    at = datetime.fromtimestamp(at_ns / 1e9, tz=UTC)
    context = price_context(service_tier)
    prices = found_model.get_prices(at, context)
    input_price, output_price = _unit(prices.input_mtok), _unit(prices.output_mtok)
    if input_price is None and output_price is None:
        return None  # priced per request or per image only: not a token price
    return Rates(
        model=found_model.id,
        provider=found_provider.id,
        source=f"genai-prices {genai_prices.__version__}",
        input=input_price or (0.0, ()),
        output=output_price or (0.0, ()),
        cache_read=_unit(prices.cache_read_mtok),
        cache_write=_unit(prices.cache_write_mtok),
        input_audio=_unit(prices.input_audio_mtok),
        output_audio=_unit(prices.output_audio_mtok),
        cache_audio_read=_unit(prices.cache_audio_read_mtok),
        input_image=_unit(prices.input_image_mtok),
        output_image=_unit(prices.output_image_mtok),
        cache_image_read=_unit(prices.cache_image_read_mtok),
        conditions=_conditions(found_model, context, at),
    )


class PriceBook:
    """Prices from genai-prices, with user overrides taking precedence."""

    def __init__(self, overrides: Overrides | None = None) -> None:
        self.overrides = overrides or Overrides()
        self._cache: dict[tuple[str, str, int, str | None], Rates | None] = {}
        self._lock = threading.Lock()

    def reload(self, overrides: Overrides) -> None:
        """Use new overrides from now on (spans already stored keep their cost until repriced)."""
        with self._lock:
            self.overrides = overrides
            self._cache = {}

    def rates(self, provider: str, model: str, at_ns: int, service_tier: str | None = None) -> Rates | None:
        """The rates in force at `at_ns` for a call served at `service_tier` (None: the list
        price), or None when the model has no known price. An override's price applies to every
        tier; the catalog's applies genai-prices' conditions (flex, priority, batch)."""
        key = (provider, model, at_ns // _HALF_HOUR_NS, service_tier)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self.overrides.model_rates(provider, model, at_ns) or _catalog_rates(
            provider, model, at_ns, service_tier
        )
        multiplier = self.overrides.multiplier(provider, model, at_ns)
        if found is not None and multiplier != 1.0:
            found = Rates(**{**found.__dict__, "multiplier": multiplier})
        with self._lock:
            self._cache[key] = found
        return found

    def price_columns(
        self,
        provider: Sequence[str | None],
        model: Sequence[str | None],
        start_ns: Sequence[int],
        input_tokens: Sequence[int | None],
        output_tokens: Sequence[int | None],
        cache_read: Sequence[int | None],
        cache_write: Sequence[int | None],
        service_tier: Sequence[str | None] | None = None,
        modalities: Sequence[Modalities | None] | None = None,
    ) -> tuple[list[float | None], list[bool | None], list[Rates | None]]:
        """Cost a batch of spans column-wise: (cost_usd, cost_known, rates used), each at its
        service tier's price where one is given, its audio and image tokens (`modalities`) at
        their own rates.

        A span that reports no tokens has nothing to price (None, None). A span with
        tokens but no known price is unpriced (None, False), never $0.
        """
        costs: list[float | None] = []
        known: list[bool | None] = []
        used: list[Rates | None] = []
        rates_for = self.rates
        for i, inp in enumerate(input_tokens):
            out = output_tokens[i]
            if inp is None and out is None:
                costs.append(None)
                known.append(None)
                used.append(None)
                continue
            name = model[i]
            tier = service_tier[i] if service_tier is not None else None
            rates = rates_for(provider[i] or "", name, start_ns[i], tier) if name else None
            if rates is None:
                costs.append(None)
                known.append(False)
            else:
                modal = modalities[i] if modalities is not None else None
                costs.append(rates.cost(inp, out, cache_read[i], cache_write[i], modal))
                known.append(True)
            used.append(rates)
        return costs, known, used
