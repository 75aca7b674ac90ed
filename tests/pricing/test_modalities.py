"""Audio and image tokens: read from every place they are reported, kept as their own kinds, and
priced at their own rates exactly as genai-prices prices the same usage."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from genai_prices import Usage, calc_price

from tests.builders.planted import UNTIL, call
from tokentrace.canonical import MODALITY_TOKEN_FIELDS
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.jobs.reprice import reprice
from tokentrace.pricing import PriceBook
from tokentrace.pricing.overrides import parse_overrides
from tokentrace.store.filters import SpanFilter

_SEMCONV = {
    "input_audio_tokens": "gen_ai.usage.audio.input_tokens",
    "output_audio_tokens": "gen_ai.usage.audio.output_tokens",
    "cache_audio_read_tokens": "gen_ai.usage.audio.cache_read.input_tokens",
    "input_image_tokens": "gen_ai.usage.image.input_tokens",
    "output_image_tokens": "gen_ai.usage.image.output_tokens",
    "cache_image_read_tokens": "gen_ai.usage.image.cache_read.input_tokens",
}


def _span(model: str, provider: str, usage: dict[str, int]) -> RawSpan:
    """A chat span reporting `usage` (genai-prices' names) in the GenAI conventions' attributes."""
    extra = {"gen_ai.provider.name": provider}
    extra |= {_SEMCONV[key]: value for key, value in usage.items() if key in _SEMCONV}
    return call(
        UNTIL,
        model=model,
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cached=usage.get("cache_read_tokens", 0),
        extra=extra,
    )


CASES = [
    # gpt-realtime prices audio, cached audio, image and cached image apart
    ("openai", "gpt-realtime", "openai", dict(
        input_tokens=1000, output_tokens=300, input_audio_tokens=400, cache_read_tokens=200,
        cache_audio_read_tokens=100, output_audio_tokens=200)),
    ("openai", "gpt-realtime", "openai", dict(
        input_tokens=2000, output_tokens=50, input_image_tokens=765, cache_read_tokens=300,
        cache_image_read_tokens=85)),
    # image generation: the prompt's image tokens at their rate, the picture at the output rate
    ("openai", "gpt-image-1", "openai", dict(
        input_tokens=560, output_tokens=4160, input_image_tokens=500, output_image_tokens=4160)),
    # Gemini: audio input and its cached part
    ("gemini", "gemini-2.5-flash", "google", dict(
        input_tokens=5000, output_tokens=120, input_audio_tokens=3200, cache_read_tokens=1024,
        cache_audio_read_tokens=640)),
    ("openai", "gpt-audio", "openai", dict(
        input_tokens=900, output_tokens=700, input_audio_tokens=600, output_audio_tokens=520)),
    # a model with no audio rates: audio at the rate of the count it is part of
    ("openai", "gpt-4o-audio-preview", "openai", dict(
        input_tokens=900, output_tokens=700, input_audio_tokens=600, output_audio_tokens=520)),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "model", "catalog", "usage"), CASES)
def test_each_modality_is_priced_as_genai_prices_prices_it(provider, model, catalog, usage):
    rows = normalize([_span(model, provider, usage)], "default").rows
    price_rows(PriceBook(), rows)
    [row] = rows
    for field in MODALITY_TOKEN_FIELDS:
        assert row[field] == usage.get(field)
    at = datetime.fromtimestamp(row["start_time"] / 1e9, UTC)
    # genai-prices wants a cached modality said outright once a cache and that modality are
    # both reported; tokentrace reads an unsaid one as none of the cache
    said = usage | {
        f"cache_{kind}_read_tokens": usage.get(f"cache_{kind}_read_tokens", 0)
        for kind in ("audio", "image")
        if usage.get("cache_read_tokens") and usage.get(f"input_{kind}_tokens")
    }
    expected = calc_price(Usage(**said), model, provider_id=catalog, genai_request_timestamp=at).total_price
    assert row["cost_usd"] == pytest.approx(float(expected), rel=1e-12, abs=1e-15)
    as_text = calc_price(
        Usage(input_tokens=usage["input_tokens"], output_tokens=usage["output_tokens"],
              cache_read_tokens=usage.get("cache_read_tokens", 0)),
        model, provider_id=catalog, genai_request_timestamp=at,
    ).total_price  # fmt: skip
    rates = PriceBook().rates(provider, model, row["start_time"])
    has_own_rates = any(
        getattr(rates, kind) is not None for kind in ("input_audio", "input_image", "output_image")
    )
    assert (row["cost_usd"] != pytest.approx(float(as_text), rel=1e-9)) == has_own_rates


def test_a_prices_file_sets_audio_and_image_rates():
    """A self-hosted voice model's audio rates from the prices file; rates it leaves out fall
    back to the count the tokens are part of."""
    text = """
[[models]]
model = "voice-internal"
input_mtok = 1.0
output_mtok = 2.0
input_audio_mtok = 10.0
output_audio_mtok = 20.0
"""
    book = PriceBook(parse_overrides(text, "prices.toml"))
    rates = book.rates("vllm", "voice-internal", 0)
    usd = rates.cost(1000, 500, None, None, (400, 100, None, 50, None, None))
    # text in 550 at $1, audio in 400 at $10, image in 50 at $1 (no image rate); out 400 at $2, 100 at $20
    assert usd == pytest.approx((550 * 1 + 400 * 10 + 50 * 1 + 400 * 2 + 100 * 20) / 1e6)


def test_audio_and_image_counts_from_openinference_and_a_raw_usage_object():
    """OpenInference's prompt/completion details, and OpenAI's Realtime usage passed through as
    JSON (Logfire's gen_ai.usage.raw): cached tokens by modality included."""
    realtime = {
        "input_tokens": 1200,
        "output_tokens": 400,
        "total_tokens": 1600,
        "input_token_details": {
            "cached_tokens": 256,
            "text_tokens": 300,
            "audio_tokens": 800,
            "image_tokens": 100,
            "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 192, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": 80, "audio_tokens": 320},
    }
    raw = {"gen_ai.usage.raw": orjson.dumps(realtime).decode(), "logfire.span_type": "span"}
    logfire = call(UNTIL, model="gpt-realtime", input_tokens=1200, output_tokens=400, cached=256, extra=raw)
    openinference = RawSpan(
        "ab" * 16, "cd" * 8, "", "ChatCompletion", 3, 10**18, 10**18 + 10**9, 0, "",
        {"openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-audio",
         "llm.token_count.prompt": 900, "llm.token_count.completion": 700,
         "llm.token_count.prompt_details.audio": 600, "llm.token_count.completion_details.audio": 520},
        {"service.name": "voice"},
    )  # fmt: skip
    from_logfire, from_openinference = normalize([logfire, openinference], "default").rows
    assert [from_logfire[f] for f in MODALITY_TOKEN_FIELDS] == [800, 320, 192, 100, None, 0]
    assert [from_openinference[f] for f in MODALITY_TOKEN_FIELDS] == [600, 520, None, None, None, None]


def test_audio_tokens_are_stored_and_a_reprice_keeps_their_rates(open_store):
    """Stored on both engines; repricing with nothing changed changes nothing (the audio rates
    apply again), and a discount reprices the audio share too."""
    store = open_store()
    usage = {"input_tokens": 900, "output_tokens": 700, "input_audio_tokens": 600, "output_audio_tokens": 520}
    rows = normalize([_span("gpt-audio", "openai", usage)], "default").rows
    price_rows(PriceBook(), rows)
    store.write_batch(tables(rows), None)
    priced = rows[0]["cost_usd"]
    [stored] = store.spans(SpanFilter("default"), ("cost_usd", *MODALITY_TOKEN_FIELDS)).to_pylist()
    assert stored == {"cost_usd": pytest.approx(priced)} | {f: usage.get(f) for f in MODALITY_TOKEN_FIELDS}
    assert reprice(store, PriceBook(), SpanFilter("default")).spans_changed == 0
    half = '[[discounts]]\nprovider = "openai"\nmodel = "gpt-audio"\nmultiplier = 0.5\n'
    discounted = PriceBook(parse_overrides(half, "prices.toml"))
    assert reprice(store, discounted, SpanFilter("default")).spans_changed == 1
    [after] = store.spans(SpanFilter("default"), ("cost_usd",)).to_pylist()
    assert after["cost_usd"] == pytest.approx(priced / 2)
