"""Self-hosted deployments amortized by the hour (issue 29, item 4): the prices file's
[[deployments]], calls tagged at ingest, each UTC hour's cost split over its calls by tokens
(estimated while open, final once closed, split again for a late call, across projects), idle
hours, utilization, and repricing; on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tokentrace import semconv
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.jobs.amortize import settle
from tokentrace.jobs.reprice import reprice
from tokentrace.pricing import PriceBook
from tokentrace.pricing.overrides import OverridesError, parse_overrides
from tokentrace.query import rollups
from tokentrace.query.deployments import deployment_reports
from tokentrace.store.filters import SpanFilter

H = datetime(2026, 11, 20, 10, tzinfo=UTC)  # a whole UTC hour
PRICES = """
[[deployments]]
name = "llama-prod"
model = "llama-3.1-8b*"
provider = "vllm"
usd_per_hour = 4.0

[[deployments]]
name = "qwen-east"
model = "qwen*"
server_address = "gpu-east-*"
usd_per_hour = 2.5
valid_from = 2026-11-20T08:00:00Z
"""


def _book(text: str = PRICES) -> PriceBook:
    return PriceBook(parse_overrides(text, "prices.toml"))


_serial = iter(range(1, 1_000_000))


def _call(at: datetime, model: str, tokens_in: int, tokens_out: int, **extra) -> RawSpan:
    n = next(_serial)
    start = int(at.timestamp() * 1e9)
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": extra.pop("provider", "vllm"),
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        **extra,
    }
    return RawSpan(
        f"{n:032x}", f"{n:016x}", "", f"chat {model}", 3, start, start + 500_000_000, 0, "", attributes, {}
    )


def _write(store, book: PriceBook, project: str, calls: list[RawSpan]) -> None:
    batch = normalize(calls, project)
    price_rows(book, batch.rows)
    store.write_batch(tables(batch.rows), None)


def _spans(store, project: str) -> dict[int, dict]:
    """The project's spans by input tokens (each test call has its own count)."""
    table = store.spans(
        SpanFilter(project), ("input_tokens", "cost_usd", "cost_known", "deployment", "attributes")
    )
    return {row["input_tokens"]: row for row in table.to_pylist()}


def _settled(row: dict) -> str | None:
    return orjson.loads(row["attributes"]).get(semconv.PRICE_AMORTIZED)


def test_the_prices_file_names_deployments_and_refuses_bad_ones():
    overrides = parse_overrides(PRICES, "prices.toml")
    llama, qwen = overrides.deployments
    assert (llama.name, llama.usd_per_hour, llama.provider, llama.valid_from_ns) == (
        "llama-prod",
        4.0,
        "vllm",
        0,
    )
    assert qwen.valid_from_ns == int(datetime(2026, 11, 20, 8, tzinfo=UTC).timestamp()) * 10**9
    at = int(H.timestamp() * 1e9)
    assert overrides.deployment("vllm", "llama-3.1-8b-instruct", None, at) is llama
    assert overrides.deployment("openai", "llama-3.1-8b-instruct", None, at) is None  # provider differs
    assert overrides.deployment("openai", "qwen2.5-72b", "gpu-east-3", at) is qwen
    assert overrides.deployment("openai", "qwen2.5-72b", "gpu-west-1", at) is None  # server differs
    assert (
        overrides.deployment("openai", "qwen2.5-72b", "gpu-east-3", at - 3 * 3600 * 10**9) is None
    )  # before

    bad = {
        'name = "x"\nusd_per_hour = 1': "model is required",
        'model = "m"\nusd_per_hour = 1': "name is required",
        'name = "x"\nmodel = "m"\nusd_per_hour = -1': "usd_per_hour must be a non-negative number",
        'name = "x"\nmodel = "m"\nusd_per_hour = "4"': "usd_per_hour must be a non-negative number",
        'name = "x"\nmodel = "m"\nusd_per_hour = nan': "usd_per_hour must be a non-negative number, got nan",
        'name = "x"\nmodel = "m"\nusd_per_hour = inf': "usd_per_hour must be a non-negative number, got inf",
        'name = "x"\nmodel = "m"\nusd_per_hour = 1\nvalid_from = "soon"': "not an ISO 8601 instant",
    }
    for body, said in bad.items():
        with pytest.raises(OverridesError, match=said):
            parse_overrides(f"[[deployments]]\n{body}\n", "p.toml")
    twice = '[[deployments]]\nname = "x"\nmodel = "a"\nusd_per_hour = 1\n' * 2
    with pytest.raises(OverridesError, match="deployments\\[1\\]: a deployment named 'x' is already defined"):
        parse_overrides(twice, "p.toml")
    with pytest.raises(OverridesError, match=r"p\.toml, line 4: deployments\[0\]: unknown key 'usd_per_hr'"):
        parse_overrides('[[deployments]]\nname = "x"\nmodel = "a"\nusd_per_hr = 1\n', "p.toml")


def test_ingest_marks_a_deployments_calls_pending_and_prices_the_rest():
    book = _book()
    batch = normalize(
        [
            _call(H, "llama-3.1-8b-instruct", 100, 20),
            _call(H, "gpt-4o-mini", 100, 20, provider="openai"),
            _call(H, "qwen2.5-72b", 50, 5, provider="openai", **{"server.address": "gpu-east-1"}),
        ],
        "default",
    )
    price_rows(book, batch.rows)
    llama, gpt, qwen = batch.rows
    assert (llama["deployment"], llama["cost_usd"], llama["cost_known"]) == ("llama-prod", None, True)
    assert llama["attributes"][semconv.PRICE_AMORTIZED] == "pending"
    assert llama["attributes"][semconv.PRICE_SOURCE] == "deployment llama-prod ($4/hour, amortized)"
    assert qwen["deployment"] == "qwen-east"
    assert (
        gpt["deployment"] is None and gpt["cost_usd"] > 0 and semconv.PRICE_AMORTIZED not in gpt["attributes"]
    )


def test_each_hour_is_split_by_tokens_across_projects_and_a_late_call_splits_it_again(open_store):
    store, book = open_store(), _book()
    deployments = book.overrides.deployments
    _write(store, book, "default", [_call(H + timedelta(minutes=5), "llama-3.1-8b", 80, 20)])
    _write(store, book, "default", [_call(H + timedelta(minutes=20), "llama-3.1-8b", 250, 50)])
    _write(store, book, "acme", [_call(H + timedelta(minutes=40), "llama-3.1-8b", 500, 100)])
    _write(
        store, book, "default", [_call(H + timedelta(minutes=41), "gpt-4o-mini", 1000, 10, provider="openai")]
    )
    assert all(r["cost_usd"] is None for r in _spans(store, "acme").values())

    # The hour is closed: split whole, the calls' shares sum to exactly usd_per_hour.
    done = settle(store, deployments, H + timedelta(hours=2))
    assert (done.hours_final, done.hours_estimated, done.spans_updated) == (1, 0, 3)
    default, acme = _spans(store, "default"), _spans(store, "acme")
    assert default[80]["cost_usd"] == pytest.approx(4.0 * 100 / 1000)
    assert default[250]["cost_usd"] == pytest.approx(4.0 * 300 / 1000)
    assert acme[500]["cost_usd"] == pytest.approx(4.0 * 600 / 1000)
    assert {_settled(default[80]), _settled(default[250]), _settled(acme[500])} == {"final"}
    assert default[1000]["deployment"] is None and default[1000]["cost_usd"] > 0  # priced per token
    assert settle(store, deployments, H + timedelta(hours=2)).spans_updated == 0  # nothing left to do

    # The rollups hold the shares too (the dashboards read them).
    whole = SpanFilter("acme", since=H, until=H + timedelta(hours=1))
    store.advance_rollups(H + timedelta(hours=3))
    assert rollups.aggregate(store, whole, (), None)[0]["cost_usd"] == pytest.approx(2.4)

    # A call that arrives after its hour closed: the hour is split again with it.
    _write(store, book, "acme", [_call(H + timedelta(minutes=59), "llama-3.1-8b-q4", 900, 100)])
    assert settle(store, deployments, H + timedelta(hours=3)).hours_final == 1
    default, acme = _spans(store, "default"), _spans(store, "acme")
    shares = [default[80]["cost_usd"], default[250]["cost_usd"], acme[500]["cost_usd"], acme[900]["cost_usd"]]
    assert shares == pytest.approx([4.0 * t / 2000 for t in (100, 300, 600, 1000)])
    assert sum(shares) == pytest.approx(4.0, abs=1e-12)
    assert rollups.aggregate(store, whole, (), None)[0]["cost_usd"] == pytest.approx(4.0 * 1600 / 2000)


def test_an_open_hour_is_estimated_then_final_when_it_closes(open_store):
    store, book = open_store(), _book()
    deployments = book.overrides.deployments
    _write(store, book, "default", [_call(H + timedelta(minutes=1), "llama-3.1-8b", 90, 10)])
    _write(store, book, "default", [_call(H + timedelta(minutes=10), "llama-3.1-8b", 270, 30)])
    quarter = H + timedelta(minutes=15)
    done = settle(store, deployments, quarter)
    assert (done.hours_estimated, done.spans_updated) == (1, 2)
    spans = _spans(store, "default")
    # a quarter of the hour has passed: $1 so far, split by tokens
    assert [spans[90]["cost_usd"], spans[270]["cost_usd"]] == pytest.approx([0.25, 0.75])
    assert {_settled(s) for s in spans.values()} == {"estimated"}
    assert settle(store, deployments, quarter + timedelta(minutes=1)).spans_updated == 0  # no new call

    _write(store, book, "default", [_call(H + timedelta(minutes=30), "llama-3.1-8b", 540, 60)])
    settle(store, deployments, H + timedelta(minutes=30))
    spans = _spans(store, "default")
    assert spans[90]["cost_usd"] == pytest.approx(0.25)  # an estimate stands until the hour closes
    assert spans[540]["cost_usd"] == pytest.approx(2.0 * 600 / 1000)  # its share of $2 so far

    settle(store, deployments, H + timedelta(hours=1, minutes=1))
    spans = _spans(store, "default")
    assert [spans[t]["cost_usd"] for t in (90, 270, 540)] == pytest.approx([0.4, 1.2, 2.4])
    assert {_settled(s) for s in spans.values()} == {"final"}


def test_idle_hours_cost_the_deployment_and_utilization_compares_with_the_busiest_minute(open_store):
    store, book = open_store(), _book()
    deployments = book.overrides.deployments
    # hour 0: 6,000 tokens in one minute, 3,000 in another; hours 1 and 2 idle; hour 3: 1,200 tokens
    _write(store, book, "default", [_call(H + timedelta(minutes=2), "llama-3.1-8b", 5000, 1000)])
    _write(store, book, "default", [_call(H + timedelta(minutes=30), "llama-3.1-8b", 2000, 1000)])
    _write(store, book, "default", [_call(H + timedelta(hours=3, minutes=5), "llama-3.1-8b", 1000, 200)])
    now = H + timedelta(hours=3, minutes=30)
    settle(store, deployments, now)
    llama, qwen = deployment_reports(store, deployments, H - timedelta(hours=6), now + timedelta(days=1), now)
    assert llama.hours == pytest.approx(3.5)  # from its first call's hour to now
    assert (llama.busy_hours, llama.idle_hours, llama.calls, llama.tokens) == (2, 2.0, 3, 10_200)
    assert llama.cost_usd == pytest.approx(14.0) and llama.idle_usd == pytest.approx(8.0)
    assert llama.amortized_usd == pytest.approx(4.0 + 2.0)  # hour 3 is open: half of it so far
    first, second, third, fourth = llama.detail
    assert first.utilization == pytest.approx(9000 / (60 * 6000))
    assert second.utilization == third.utilization == 0.0 and not second.calls
    assert fourth.utilization == pytest.approx(1 / 60) and fourth.hours == pytest.approx(0.5)
    assert (first.settled, fourth.settled) == (True, False)
    assert llama.utilization == pytest.approx((9000 / 360000 + 0.5 / 60) / 3.5)
    assert llama.peak_tokens_per_second == pytest.approx(100.0)
    # in service from valid_from (08:00) though never called: every hour of it idle
    assert (qwen.hours, qwen.calls, qwen.busy_hours) == (pytest.approx(5.5), 0, 0)
    assert qwen.idle_usd == pytest.approx(2.5 * 5.5)


def test_repricing_with_a_new_hourly_rate_splits_the_hours_again(open_store):
    store, book = open_store(), _book()
    _write(store, book, "default", [_call(H + timedelta(minutes=5), "llama-3.1-8b", 100, 0)])
    _write(store, book, "default", [_call(H + timedelta(minutes=6), "llama-3.1-8b", 300, 0)])
    _write(store, book, "default", [_call(H + timedelta(minutes=7), "gpt-4o-mini", 700, 0, provider="vllm")])
    now = H + timedelta(hours=2)
    settle(store, book.overrides.deployments, now)
    assert _spans(store, "default")[700]["deployment"] is None  # gpt-4o-mini: per token

    dearer = PriceBook(parse_overrides(PRICES.replace("llama-3.1-8b*", "*").replace("4.0", "8.0"), "v2.toml"))
    report = reprice(store, dearer, SpanFilter("default", since=H, until=H + timedelta(hours=1)), now)
    spans = _spans(store, "default")
    assert [spans[t]["cost_usd"] for t in (100, 300, 700)] == pytest.approx(
        [8.0 * t / 1100 for t in (100, 300, 700)]
    )
    assert {s["deployment"] for s in spans.values()} == {"llama-prod"}
    assert {_settled(s) for s in spans.values()} == {"final"}
    assert report.cost_after_usd == pytest.approx(8.0) and report.spans_changed == 3
    again = reprice(store, dearer, SpanFilter("default", since=H, until=H + timedelta(hours=1)), now)
    assert again.spans_changed == 0 and again.cost_after_usd == pytest.approx(8.0)
