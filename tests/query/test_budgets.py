"""Budgets against the traced spend: each window counts its own spans only, sums agree with the
rollups, refusals are the spans with error type budget, "*" budgets rank their values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.builders.planted import call, store_with
from tokentrace.budgets import parse_policy
from tokentrace.query.aggregates import rollup
from tokentrace.query.budgets import budget_usage
from tokentrace.store.filters import SpanFilter

NOW = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
POLICY = parse_policy(
    """
[[budgets]]
tenant_id = "acme"
usd_per_day = 0.05

[[budgets]]
tenant_id = "beta"
tokens_per_minute = 5000
action = "warn"

[[budgets]]
feature = "*"
usd_per_month = 0.01
action = "downgrade"
downgrade_to = "gpt-4o-mini"

[[budgets]]
api_key = "sk-live-123"
usd_per_day = 1
""",
    "test",
)


@pytest.fixture
def store(open_store):
    spans = [
        *(call(NOW - timedelta(hours=h), tenant="acme") for h in (1, 2, 3)),
        call(NOW - timedelta(hours=13), tenant="acme"),  # yesterday (UTC): another window
        call(NOW - timedelta(minutes=5), tenant="acme", error="budget"),
        call(NOW - timedelta(seconds=20), tenant="beta", feature="classify", output_tokens=50),
        call(NOW - timedelta(seconds=40), tenant="beta", feature="classify"),  # the previous minute
        call(NOW - timedelta(days=30), tenant="beta", feature="classify"),  # last month
    ]
    return store_with(open_store(), spans)


def test_each_budget_counts_its_window_and_its_refusals(store) -> None:
    by_name = {b.name: b for b in budget_usage(store, "default", POLICY, NOW.timestamp())}
    acme = by_name["tenant_id=acme/usd_per_day"]
    today = SpanFilter("default", since=datetime(2026, 11, 22, tzinfo=UTC), equals={"tenant_id": "acme"})
    [want] = rollup(store, today)
    assert acme.used == pytest.approx(want["cost_usd"], abs=1e-12) and acme.used > 0
    assert acme.calls == 4 and acme.refused == 1  # three answered today, one refused
    assert acme.share == pytest.approx(acme.used / 0.05)
    assert (acme.window, acme.window_start, acme.resets_at) == (
        "2026-11-22",
        "2026-11-22T00:00:00Z",
        "2026-11-23T00:00:00Z",
    )
    beta = by_name["tenant_id=beta/tokens_per_minute"]
    assert (beta.used, beta.calls, beta.refused) == (1050, 1, 0)  # this minute's call only
    assert beta.window == "2026-11-22T12:00Z" and beta.window_start == "2026-11-22T12:00:00Z"


def test_a_wildcard_budget_ranks_its_values_nearest_the_limit(store) -> None:
    usage = budget_usage(store, "default", POLICY, NOW.timestamp())
    [features] = [b for b in usage if b.scope == "feature"]
    assert features.used is None and features.value_count == 2
    values = features.by_value
    assert [v.value for v in values] == ["refund-chat", "classify"]
    assert values[0].share > values[1].share > 0
    month = SpanFilter("default", since=datetime(2026, 11, 1, tzinfo=UTC), equals={"feature": "classify"})
    [want] = rollup(store, month)
    assert values[1].used == pytest.approx(want["cost_usd"], abs=1e-12)
    assert values[1].calls == 2  # the call of October is another month's


def test_key_budgets_are_not_followed_from_spans_and_no_budgets_is_empty(store) -> None:
    [key] = [b for b in budget_usage(store, "default", POLICY, NOW.timestamp()) if b.scope == "api_key"]
    assert key.traced is False and key.value is None and key.used is None
    assert "sk-live-123" not in str(key)
    assert budget_usage(store, "default", parse_policy("", "empty")) == []
    assert budget_usage(store, "another-project", POLICY, NOW.timestamp())[0].used == 0
