"""The provider's bill against the traced calls, from each documented export shape: OpenAI's Costs
and Usage API pages, Anthropic's cost and usage reports. Each planted gap gets its reason; a file
in no known shape is refused with where it went wrong, and nothing is half read."""

from __future__ import annotations

from datetime import date, timedelta

import orjson
import pytest

from tests.builders.planted import UNTIL, call, store_with
from tokentrace.query.invoices import InvoiceError, read_export
from tokentrace.query.reconcile import model_key, reconcile

DAY1 = UNTIL - timedelta(hours=2)  # 2026-11-22
DAY2 = UNTIL + timedelta(hours=13)  # 2026-11-23
START1, START2 = 1_795_305_600, 1_795_392_000  # the two days' midnights, as the APIs write them
GPT4O = (1000 * 2.5 + 100 * 10) / 1e6  # one planted gpt-4o call at list prices
MINI = (1000 * 0.15 + 100 * 0.6) / 1e6


def _anthropic(at, **kw):
    return call(
        at,
        extra={"gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-sonnet-4-20250514"},
        **kw,
    )


@pytest.fixture
def store(open_store):
    calls = [call(DAY1 + timedelta(minutes=n)) for n in range(4)]  # gpt-4o
    calls += [call(DAY1, model="gpt-4o-mini") for _ in range(10)]
    calls += [call(DAY1, model="gpt-x-internal") for _ in range(2)]  # no price known
    calls += [call(DAY2 + timedelta(minutes=n)) for n in range(3)]
    calls += [_anthropic(DAY1) for _ in range(5)]
    return store_with(open_store(), calls)


def _openai_costs(buckets: list[tuple[int, list[tuple[str | None, float]]]]) -> dict:
    return {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": start,
                "end_time": start + 86400,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": value, "currency": "usd"},
                        "line_item": item,
                        "project_id": None,
                    }
                    for item, value in items
                ],
            }
            for start, items in buckets
        ],
        "has_more": False,
        "next_page": None,
    }


def _rows(result) -> dict[tuple[str, str], object]:
    return {(r.day, r.model): r for r in result.rows}


def test_openai_costs_by_line_item_match_where_traced_and_say_why_elsewhere(store):
    page = _openai_costs(
        [
            (
                START1,
                [
                    ("gpt-4o-2024-08-06, input", 4 * 1000 * 2.5 / 1e6),
                    ("gpt-4o-2024-08-06, output", 4 * 100 * 10 / 1e6),
                    ("gpt-4o-mini-2024-07-18, input", 12 * 1000 * 0.15 / 1e6),  # 12 billed, 10 traced
                    ("gpt-4o-mini-2024-07-18, output", 12 * 100 * 0.6 / 1e6),
                    ("gpt-x-internal, input", 0.05),
                    ("gpt-4.1-2025-04-14, input", 0.30),  # never traced
                    ("web search tool calls", 0.10),
                ],
            ),
            (
                START2,
                [("gpt-4o-2024-08-06, input", 3 * 1000 * 2.5 / 1e6), ("gpt-4o-2024-08-06, output", 0.002)],
            ),
        ]
    )
    # paged through the API, one answer per line: the same as one page
    text = "\n".join(orjson.dumps(p).decode() for p in (page, _openai_costs([])))
    result = reconcile(store, "default", "openai", read_export("openai", text))
    rows = _rows(result)
    assert (result.since[:10], result.until[:10]) == ("2026-11-22", "2026-11-24")

    gpt4o = rows[("2026-11-22", "gpt-4o")]
    assert gpt4o.matches and gpt4o.reasons == []
    assert gpt4o.billed_usd == pytest.approx(4 * GPT4O) and gpt4o.traced_usd == pytest.approx(4 * GPT4O)
    assert gpt4o.billed_items == ["gpt-4o-2024-08-06, input", "gpt-4o-2024-08-06, output"]

    mini = rows[("2026-11-22", "gpt-4o-mini")]
    assert not mini.matches and mini.gap_usd == pytest.approx(2 * MINI)
    assert mini.gap_pct == pytest.approx(2 / 12)
    assert mini.reasons == [
        "traced below billed with every call priced: prices that changed, or usage the spans did not carry"
    ]

    unpriced = rows[("2026-11-22", "gpt-x-internal")]
    assert unpriced.traced_usd == 0 and unpriced.unpriced_calls == 2
    assert "2 traced calls have no price: add gpt-x-internal to the prices file" in unpriced.reasons[0]

    untraced = rows[("2026-11-22", "gpt-4.1")]
    assert untraced.traced_requests == 0 and untraced.reasons[0].startswith("billed but never traced")
    tools = rows[("2026-11-22", "(not a model)")]
    assert tools.billed_usd == pytest.approx(0.10) and "web search tool calls" in tools.reasons[0]

    day2 = rows[("2026-11-23", "gpt-4o")]
    assert day2.gap_usd == pytest.approx(0.002 - 3 * 100 * 10 / 1e6) and not day2.matches
    assert "traced above billed" in " ".join(day2.reasons)
    # The anthropic calls are not on OpenAI's bill, and the totals are the rows'.
    assert all(r.model != "claude-sonnet-4" for r in result.rows)
    assert result.billed_usd == pytest.approx(sum(r.billed_usd or 0 for r in result.rows))
    assert result.gap_usd == pytest.approx(result.billed_usd - result.traced_usd)


def test_openai_costs_without_line_items_compare_whole_days(store):
    page = _openai_costs([(START1, [(None, 1.0)])])
    [row] = [r for r in reconcile(store, "default", "openai", read_export("openai", orjson.dumps(page))).rows]
    assert (row.day, row.model) == ("2026-11-22", "(every model)")
    assert row.traced_usd == pytest.approx(4 * GPT4O + 10 * MINI)
    assert row.traced_requests == 16 and row.unpriced_calls == 2


def test_openai_usage_pages_count_the_calls_that_were_never_traced(store):
    usage = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": START1,
                "end_time": START1 + 86400,
                "results": [
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 6000,
                        "output_tokens": 600,
                        "input_cached_tokens": 0,
                        "input_audio_tokens": 0,
                        "output_audio_tokens": 0,
                        "num_model_requests": 6,
                        "project_id": None,
                        "user_id": None,
                        "api_key_id": None,
                        "model": "gpt-4o-2024-08-06",
                        "batch": False,
                        "service_tier": "default",
                    },
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 11000,  # 1,000 more than the spans carried
                        "output_tokens": 1000,
                        "num_model_requests": 10,
                        "model": "gpt-4o-mini-2024-07-18",
                        "batch": True,
                    },
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    result = reconcile(store, "default", "openai", read_export("openai", orjson.dumps([usage])))
    rows = _rows(result)
    gpt4o = rows[("2026-11-22", "gpt-4o")]
    assert result.billed_usd is None and gpt4o.billed_usd is None and gpt4o.gap_usd is None
    assert (gpt4o.billed_requests, gpt4o.traced_requests) == (6, 4)
    assert gpt4o.reasons[0].startswith("2 billed calls were not traced (33%)")
    mini = rows[("2026-11-22", "gpt-4o-mini")]
    assert mini.billed_tiers == {"batch": 12000} and not mini.matches
    assert mini.reasons[0].startswith("more input tokens billed than traced")
    assert "billed partly at the batch tier" in mini.reasons[1]


def test_anthropic_cost_report_in_cents_and_its_usage_report(store):
    per_call = (1000 * 3 + 100 * 15) / 1e6  # claude-sonnet-4 at list prices
    cost = {
        "data": [
            {
                "starting_at": "2026-11-22T00:00:00Z",
                "ending_at": "2026-11-23T00:00:00Z",
                "results": [
                    {
                        "currency": "USD",
                        "amount": f"{5 * 1000 * 3 / 1e6 * 100:.4f}",  # cents, as a decimal string
                        "workspace_id": None,
                        "description": "Claude Sonnet 4 Usage - Input Tokens",
                        "cost_type": "tokens",
                        "context_window": "0-200k",
                        "model": "claude-sonnet-4-20250514",
                        "service_tier": "standard",
                        "token_type": "uncached_input_tokens",
                    },
                    {
                        "currency": "USD",
                        "amount": f"{5 * 100 * 15 / 1e6 * 100:.4f}",
                        "description": "Claude Sonnet 4 Usage - Output Tokens",
                        "cost_type": "tokens",
                        "model": "claude-sonnet-4-20250514",
                        "service_tier": "standard",
                        "token_type": "output_tokens",
                    },
                    {
                        "currency": "USD",
                        "amount": "25",
                        "description": "Web Search",
                        "cost_type": "web_search",
                    },
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    rows = _rows(reconcile(store, "default", "anthropic", read_export("anthropic", orjson.dumps(cost))))
    sonnet = rows[("2026-11-22", "claude-sonnet-4")]
    assert sonnet.matches and sonnet.billed_usd == pytest.approx(5 * per_call)
    assert rows[("2026-11-22", "(not a model)")].billed_usd == pytest.approx(0.25)

    usage = {
        "data": [
            {
                "starting_at": "2026-11-22T00:00:00Z",
                "ending_at": "2026-11-23T00:00:00Z",
                "results": [
                    {
                        "uncached_input_tokens": 3000,
                        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 1000},
                        "cache_read_input_tokens": 1000,
                        "output_tokens": 500,
                        "server_tool_use": {"web_search_requests": 0},
                        "api_key_id": None,
                        "workspace_id": None,
                        "model": "claude-sonnet-4-20250514",
                        "service_tier": "standard",
                        "context_window": "0-200k",
                    }
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    [line] = read_export("anthropic", orjson.dumps(usage))
    assert (line.day, line.input_tokens, line.output_tokens) == (date(2026, 11, 22), 5000, 500)
    rows = _rows(reconcile(store, "default", "anthropic", [line]))
    assert rows[("2026-11-22", "claude-sonnet-4")].matches  # 5 calls of 1,000 in and 100 out


@pytest.mark.parametrize(
    ("provider", "text", "said"),
    [
        ("openai", "{not json", "line 1: not JSON"),
        ("openai", '{"object": "list"}', "page 1: not a openai cost or usage page"),
        ("openai", '{"data": [{"start_time": 1795305600}]}', "page 1, data[0]: a time bucket needs"),
        (
            "openai",
            '{"data": [{"start_time": 1795305600, "results": [{"amount": {"value": "x"}}]}]}',
            "page 1, data[0].results[0]: value is 'x', not a number",
        ),
        (
            "anthropic",
            '{"data": [{"starting_at": "2026-11-22T00:00:00Z", "results": [{"amount": "NaN"}]}]}',
            "page 1, data[0].results[0]: amount is 'NaN', not a number",
        ),
        (
            "openai",
            '{"data": [{"start_time": 1795305600, "results": [{"amount": {"value": 1, "currency": "eur"}}]}]}',  # noqa: E501
            "only USD amounts",
        ),
        ("anthropic", '{"data": [{"starting_at": "yesterday", "results": []}]}', "'yesterday' is not a time"),
        (
            "anthropic",
            '{"data": [{"starting_at": "2026-11-22T00:00:00Z", "results": [{"x": 1}]}]}',
            "neither",
        ),
        (
            "openai",
            '{"data": [{"start_time": 1795305600, "results": [{"num_model_requests": 2, "input_tokens": "NaN"}]}]}',  # noqa: E501
            "page 1, data[0].results[0]: input_tokens is 'NaN', not a count",
        ),
        (
            "openai",
            '{"data": [{"start_time": 1795305600, "results": [{"num_model_requests": 2.5}]}]}',
            "num_model_requests is 2.5, not a count",
        ),
        (
            "anthropic",
            '{"data": [{"starting_at": "2026-11-22T00:00:00Z", "results": [{"output_tokens": 5, '
            '"cache_creation": {"ephemeral_5m_input_tokens": -3}}]}]}',
            "cache_creation.ephemeral_5m_input_tokens is -3, not a count",
        ),
        (
            "anthropic",
            '{"data": [{"starting_at": "2026-11-22T00:00:00Z", "results": [{"output_tokens": {"n": 1}}]}]}',
            "output_tokens is {'n': 1}, not a count",
        ),
        ("gemini", "{}", "provider must be one of: openai, anthropic"),
        ("openai", "\n\n", "the export is empty"),
    ],
)
def test_an_export_in_no_known_shape_is_refused_with_where(provider, text, said):
    with pytest.raises(InvoiceError, match=None) as raised:
        read_export(provider, text)
    assert said in str(raised.value)


def test_models_match_without_their_snapshot_date():
    assert model_key("gpt-4o-2024-08-06") == model_key("GPT-4o") == "gpt-4o"
    assert model_key("claude-sonnet-4-20250514") == "claude-sonnet-4"
    assert model_key("o3-mini") == "o3-mini" and model_key(None) == "(not a model)"
