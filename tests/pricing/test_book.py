"""Prices: our cached, column-wise costing agrees with genai-prices' own calculation."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from genai_prices import Usage, calc_price

from tests.builders.planted import UNTIL, call
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.jobs.reprice import reprice
from tokentrace.pricing import PriceBook
from tokentrace.pricing.overrides import OverridesError, parse_overrides
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import SpanFilter

NOW = time.time_ns()


@pytest.mark.parametrize(
    "provider,model,catalog_provider",
    [
        ("openai", "gpt-4o", "openai"),
        ("openai", "gpt-4o-mini-2024-07-18", "openai"),
        ("anthropic", "claude-sonnet-4-5", "anthropic"),
        ("anthropic", "claude-3-5-haiku-20241022", "anthropic"),
        ("gemini", "gemini-2.5-pro", "google"),
        ("openai", "text-embedding-3-small", "openai"),
    ],
)
@pytest.mark.parametrize(
    "usage",
    [
        dict(input_tokens=1000, output_tokens=50),
        dict(input_tokens=1000, cache_read_tokens=600, cache_write_tokens=100, output_tokens=50),
        dict(input_tokens=250_000, cache_read_tokens=10_000, output_tokens=2_000),  # past 200k tiers
    ],
)
def test_cost_matches_genai_prices(provider, model, catalog_provider, usage):
    expected = calc_price(
        Usage(**usage),
        model,
        provider_id=catalog_provider,
        genai_request_timestamp=datetime.fromtimestamp(NOW / 1e9, UTC),
    ).total_price
    rates = PriceBook().rates(provider, model, NOW)
    got = rates.cost(
        usage["input_tokens"],
        usage["output_tokens"],
        usage.get("cache_read_tokens"),
        usage.get("cache_write_tokens"),
    )
    assert got == pytest.approx(float(expected), rel=1e-12, abs=1e-15)


def test_unknown_model_has_no_price():
    book = PriceBook()
    assert book.rates("vllm", "my-finetune", NOW) is None
    costs, known, used = book.price_columns(
        ["vllm", "openai"], ["my-finetune", None], [NOW, NOW], [10, 10], [1, 1], [None, None], [None, None]
    )
    assert costs == [None, None] and known == [False, False] and used == [None, None]


def test_spans_without_usage_are_not_priced():
    costs, known, _ = PriceBook().price_columns(["openai"], ["gpt-4o"], [NOW], [None], [None], [None], [None])
    assert costs == [None] and known == [None]


OVERRIDES = """
[[models]]
model = "acme-llama-*"
provider = "vllm"
input_mtok = 0.5
output_mtok = 1.5
cache_read_mtok = 0.1

[[models]]
model = "acme-llama-*"
provider = "vllm"
input_mtok = 0.25
output_mtok = 0.75
valid_from = 2030-01-01

[[discounts]]
provider = "openai"
model = "gpt-4o*"
multiplier = 0.8
"""


def test_overrides_price_custom_models_and_apply_discounts():
    book = PriceBook(parse_overrides(OVERRIDES, "test.toml"))
    rates = book.rates("vllm", "acme-llama-70b", NOW)
    assert rates.source == "test.toml"
    assert rates.cost(1_000_000, 1_000_000, 500_000, None) == pytest.approx(0.25 + 0.05 + 1.5)
    future = int(datetime(2030, 6, 1, tzinfo=UTC).timestamp() * 1e9)
    assert book.rates("vllm", "acme-llama-70b", future).cost(1_000_000, 0, 0, 0) == pytest.approx(0.25)
    assert book.rates("other", "acme-llama-70b", NOW) is None  # provider-scoped

    plain = PriceBook().rates("openai", "gpt-4o", NOW).cost(1000, 100, 0, 0)
    assert book.rates("openai", "gpt-4o", NOW).cost(1000, 100, 0, 0) == pytest.approx(plain * 0.8)
    assert book.rates("openai", "gpt-4o", NOW).model == "gpt-4o"  # the catalog price, discounted


@pytest.mark.parametrize(
    "text,message",
    [
        ("[[models]]\ninput_mtok = 1\noutput_mtok = 1", "model is required"),
        ('[[models]]\nmodel = "x"\noutput_mtok = 1', "input_mtok is required"),
        ('[[models]]\nmodel = "x"\ninput_mtok = -1\noutput_mtok = 1', "non-negative"),
        # TOML reads nan and inf as floats: a NaN price would turn every sum it joins into NaN
        (
            '[[models]]\nmodel = "x"\ninput_mtok = nan\noutput_mtok = 1',
            "input_mtok must be a non-negative number, got nan",
        ),
        (
            '[[models]]\nmodel = "x"\ninput_mtok = 1\noutput_mtok = inf',
            "output_mtok must be a non-negative number, got inf",
        ),
        (
            '[[models]]\nmodel = "x"\ninput_mtok = 1\noutput_mtok = 1\ncache_read_mtok = -nan',
            "cache_read_mtok",
        ),
        ("[[discounts]]\nmultiplier = nan", "multiplier must be a non-negative number, got nan"),
        ('[[models]]\nmodel = "x"\ninput_mtok = 1\noutput_mtok = 1\nvalid_from = "soon"', "ISO 8601"),
        ("[[discounts]]\nmultiplier = 'lots'", "multiplier"),
        ("this is not toml", "prices.toml"),
    ],
)
def test_bad_overrides_name_the_entry(text, message):
    with pytest.raises(OverridesError, match=message):
        parse_overrides(text, "prices.toml")


@pytest.mark.parametrize(
    "text,message",
    [
        # a typo in a table's name: it would be priced as if it were not there
        (
            '[[model]]\nmodel = "x"\ninput_mtok = 1\noutput_mtok = 1',
            "prices.toml, line 1: unknown table 'model'",
        ),
        # a section from a newer version
        (
            '[[models]]\nmodel = "x"\ninput_mtok = 1\noutput_mtok = 1\n\n[[commitments]]\nname = "gpu"',
            "prices.toml, line 6: unknown table 'commitments'",
        ),
        # a typo in a key of the second entry: named by its line
        (
            '[[models]]\nmodel = "a"\ninput_mtok = 1\noutput_mtok = 1\n\n[[models]]\nmodel = "b"\n'
            "input_mtok = 1\noutput_mtok = 1\ncache_reed_mtok = 0.1",
            "prices.toml, line 10: models\\[1\\]: unknown key 'cache_reed_mtok'",
        ),
        ("models = 3", "models must be tables"),
    ],
)
def test_unknown_tables_and_keys_stop_with_the_file_and_line(text, message):
    with pytest.raises(OverridesError, match=message):
        parse_overrides(text, "prices.toml")


@pytest.mark.parametrize(
    "provider,model,catalog_provider,tier,context,conditions",
    [
        ("openai", "gpt-5", "openai", "flex", {"service_tier": "flex"}, "service_tier=flex"),
        ("openai", "gpt-5", "openai", "priority", {"service_tier": "priority"}, "service_tier=priority"),
        ("openai", "gpt-4o", "openai", "priority", {"service_tier": "priority"}, "service_tier=priority"),
        ("openai", "gpt-4o", "openai", "default", {"service_tier": "default"}, None),
        ("openai", "gpt-4o-mini", "openai", "batch", {"processing": "batch"}, "processing=batch"),
        ("anthropic", "claude-sonnet-4-5", "anthropic", "batch", {"processing": "batch"}, "processing=batch"),
        ("anthropic", "claude-sonnet-4-5", "anthropic", "standard", {"service_tier": "standard"}, None),
        ("gemini", "gemini-2.5-pro", "google", "batch", {"processing": "batch"}, "processing=batch"),
    ],
)
@pytest.mark.parametrize(
    "usage",
    [
        dict(input_tokens=1000, output_tokens=50),
        dict(input_tokens=1000, cache_read_tokens=600, output_tokens=50),
        dict(input_tokens=250_000, cache_read_tokens=10_000, output_tokens=2_000),  # past 200k tiers
    ],
)
def test_a_tier_is_priced_as_genai_prices_prices_it(
    provider, model, catalog_provider, tier, context, conditions, usage
):
    at = datetime.fromtimestamp(NOW / 1e9, UTC)
    expected = calc_price(
        Usage(**usage), model, provider_id=catalog_provider, genai_request_timestamp=at, price_context=context
    ).total_price
    book = PriceBook()
    rates = book.rates(provider, model, NOW, tier)
    args = (usage["input_tokens"], usage["output_tokens"], usage.get("cache_read_tokens"), None)
    assert rates.cost(*args) == pytest.approx(float(expected), rel=1e-12, abs=1e-15)
    assert rates.conditions == conditions
    listed = book.rates(provider, model, NOW)
    assert (rates.cost(*args) != listed.cost(*args)) == (conditions is not None)  # the tier moved it


def test_a_tier_rides_with_the_span_into_its_price():
    """The answered tier wins over the requested one, in any spelling and case; the span is
    priced at it and says which variant priced it."""
    spellings = [
        {"openai.request.service_tier": "auto", "openai.response.service_tier": "FLEX"},
        {"gen_ai.openai.request.service_tier": "flex"},
        {"gen_ai.openai.response.service_tier": "flex", "openai.request.service_tier": "priority"},
        {"openai.request.service_tier": "auto"},
        {},
    ]
    spans = [call(UNTIL, model="gpt-5", extra=extra) for extra in spellings]
    rows = normalize(spans, "default").rows
    price_rows(PriceBook(), rows)
    assert [r["service_tier"] for r in rows] == ["flex", "flex", "flex", "auto", None]
    flex, _, _, auto, plain = rows
    assert flex["cost_usd"] == pytest.approx(plain["cost_usd"] / 2)  # gpt-5 flex: half the list price
    assert auto["cost_usd"] == plain["cost_usd"]  # auto matches no variant: the list price
    assert flex["attributes"]["tokentrace.price.conditions"] == "service_tier=flex"
    assert "tokentrace.price.conditions" not in plain["attributes"]


def test_repricing_keeps_each_span_at_its_tier(tmp_path):
    """A discount added later reprices a flex call at the discounted flex price, not the list's."""
    store = DuckDBStore(tmp_path / "t.duckdb")
    spans = [
        call(UNTIL, model="gpt-5", extra={"openai.response.service_tier": "flex"}),
        call(UNTIL, model="gpt-5"),
    ]
    rows = normalize(spans, "default").rows
    price_rows(PriceBook(), rows)
    store.write_batch(tables(rows), None)
    flex, listed = (r["cost_usd"] for r in rows)
    discount = '[[discounts]]\nprovider = "openai"\nmodel = "gpt-5"\nmultiplier = 0.5\n'
    report = reprice(store, PriceBook(parse_overrides(discount, "prices.toml")), SpanFilter("default"))
    assert report.spans_changed == 2
    stored = store.spans(SpanFilter("default"), ("service_tier", "cost_usd", "attributes")).to_pylist()
    costs = {row["service_tier"]: row["cost_usd"] for row in stored}
    assert costs == {"flex": pytest.approx(flex / 2), None: pytest.approx(listed / 2)}
    assert all("service_tier=flex" in row["attributes"] for row in stored if row["service_tier"])
    store.close()


def test_the_server_loads_the_price_catalog_only_when_a_price_is_looked_up():
    """genai-prices is ~11 MB of an idle server that prices nothing itself (its workers do)."""
    code = """
import sys, time
import tokentrace.server.app
from tokentrace.pricing import PriceBook
book = PriceBook()
assert "genai_prices" not in sys.modules, "imported with the server"
rates = book.rates("openai", "gpt-4o", time.time_ns())
assert rates is not None and "genai_prices" in sys.modules
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
