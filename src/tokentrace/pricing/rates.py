"""Per-token rates of one model, and the cost of one call at those rates."""

from __future__ import annotations

from dataclasses import dataclass

from tokentrace import semconv

#: A unit price in USD per million tokens: the base rate and "cliff" tiers, where
#: crossing a tier's start (total input tokens) applies its rate to all tokens.
UnitPrice = tuple[float, tuple[tuple[int, float], ...]]
#: A call's audio and image tokens, in canonical.MODALITY_TOKEN_FIELDS' order: input audio,
#: output audio, cached audio, input image, output image, cached image (None: not reported).
Modalities = tuple[int | None, int | None, int | None, int | None, int | None, int | None]


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
    # Audio and image rates (None: billed at the rate of the count they are part of)
    input_audio: UnitPrice | None = None
    output_audio: UnitPrice | None = None
    cache_audio_read: UnitPrice | None = None
    input_image: UnitPrice | None = None
    output_image: UnitPrice | None = None
    cache_image_read: UnitPrice | None = None
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
        modalities: Modalities | None = None,
    ) -> float:
        """USD for one call. input_tokens includes cached read and cache-write tokens; the audio
        and image counts (`modalities`) are parts of the input, output and cached counts, each
        priced at its own rate where the model has one, else at the rate of what it is part of
        (cached audio: the cached-audio rate, else audio's, else cached input's), as genai-prices
        decomposes usage."""
        total_in = input_tokens or 0
        cached = cache_read_tokens or 0
        written = cache_write_tokens or 0
        output = output_tokens or 0
        if modalities is not None and any(modalities):
            return self._with_modalities(total_in, output, cached, written, modalities)
        # Never let inconsistent sources make the uncached share negative.
        uncached = max(total_in - cached - written, 0)
        usd = uncached * _rate(self.input, total_in)
        usd += cached * _rate(self.cache_read or self.input, total_in)
        usd += written * _rate(self.cache_write or self.input, total_in)
        usd += output * _rate(self.output, total_in)
        return usd * self.multiplier / 1_000_000

    def _with_modalities(
        self, total_in: int, output: int, cached: int, written: int, modal: Modalities
    ) -> float:
        """`cost` of a call with audio or image tokens (apart: nearly every call has none)."""
        audio_in, audio_out, audio_cached, image_in, image_out, image_cached = (n or 0 for n in modal)

        def at(*prices: UnitPrice | None) -> float:
            return _rate(next(p for p in prices if p is not None), total_in)

        text_cached = max(cached - audio_cached - image_cached, 0)
        audio_uncached = max(audio_in - audio_cached, 0)
        image_uncached = max(image_in - image_cached, 0)
        text_in = max(total_in - cached - written - audio_uncached - image_uncached, 0)
        usd = text_in * at(self.input)
        usd += text_cached * at(self.cache_read, self.input)
        usd += written * at(self.cache_write, self.input)
        usd += audio_uncached * at(self.input_audio, self.input)
        usd += audio_cached * at(self.cache_audio_read, self.input_audio, self.cache_read, self.input)
        usd += image_uncached * at(self.input_image, self.input)
        usd += image_cached * at(self.cache_image_read, self.input_image, self.cache_read, self.input)
        usd += max(output - audio_out - image_out, 0) * at(self.output)
        usd += audio_out * at(self.output_audio, self.output)
        usd += image_out * at(self.output_image, self.output)
        return usd * self.multiplier / 1_000_000
