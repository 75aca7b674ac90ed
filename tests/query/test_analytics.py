"""The analytics every surface shares: rates, mixes, retries, truncation, spend per session."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders.planted import UNTIL, call, new_trace, store_with
from tokentrace.ingest.raw import RawSpan
from tokentrace.query import aggregates, filters
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter

T0 = UNTIL - timedelta(minutes=30)


def _attempt(parent: RawSpan, number: int, failed: bool) -> RawSpan:
    """An HTTP attempt of an SDK's own retry loop, below its LLM call."""
    return RawSpan(
        parent.trace_id,
        f"{int(parent.span_id, 16) + 1000 + number:016x}",
        parent.span_id,
        f"attempt {number + 1}",
        3,
        parent.start_unix_nano,
        parent.start_unix_nano + 1_000_000,
        2 if failed else 0,
        "rate_limit" if failed else "",
        {"http.request.resend_count": number, **({"error.type": "rate_limit"} if failed else {})},
        {"service.name": "support-bot"},
    )


@pytest.fixture
def store(open_store):
    at = T0
    spans = []
    # Session s1: two calls with a 5k-token prompt; s2: one small call that hit max_tokens.
    spans += [call(at, input_tokens=5000, extra={"session.id": "s1"}) for _ in range(2)]
    spans.append(
        call(
            at,
            model="gpt-4o-mini",
            input_tokens=500,
            output_tokens=50,
            user="u2",
            extra={"session.id": "s2", "gen_ai.response.finish_reasons": ["length"]},
        )
    )
    # An app's retry loop: two 429s, then an answer, in one trace.
    trace = new_trace()
    spans += [call(at, trace=trace, error="rate_limit", extra={"session.id": "s3"}) for _ in range(2)]
    spans.append(call(at, trace=trace, extra={"session.id": "s3"}))
    # The SDK's retry loop below one call: attempt 1 failed, attempt 2 answered.
    sdk_call = call(at, extra={"session.id": "s3"})
    spans += [sdk_call, _attempt(sdk_call, 0, True), _attempt(sdk_call, 1, False)]
    # A timeout that never answered.
    spans.append(call(at, error="timeout", user="u3"))
    return store_with(open_store(), spans)


def test_rates_errors_and_retries(store):
    [row] = aggregates.rollup(store, SpanFilter("default"))
    assert row["requests"] == 8 and row["answered"] == 5
    assert row["errors_by_type"] == {"rate_limit": 2, "timeout": 1}
    assert row["error_rate"] == pytest.approx(3 / 8)
    # 8 calls + 1 SDK resend = 9 attempts for 5 answers; the one resend the SDK reported.
    assert row["attempts_per_request"] == pytest.approx(9 / 5)
    assert row["retry_rate"] == pytest.approx(1 / 9)
    assert row["truncation_rate"] == pytest.approx(1 / 5)  # of the answered calls
    assert row["output_input_ratio"] == pytest.approx(row["output_tokens"] / row["input_tokens"])
    assert row["sessions"] == 3 and row["users"] == 3
    assert row["cost_per_session"] == pytest.approx(row["cost_usd"] / 3)


def test_model_mix_is_each_models_share_of_requests_and_cost(store):
    rows = {
        r["request_model"]: r for r in aggregates.rollup(store, SpanFilter("default"), ("request_model",))
    }
    assert rows["gpt-4o-mini"]["share_of_requests"] == pytest.approx(1 / 8)
    assert rows["gpt-4o"]["share_of_cost"] + rows["gpt-4o-mini"]["share_of_cost"] == pytest.approx(1)
    assert rows["gpt-4o"]["share_of_cost"] > 0.9


def test_truncation_by_feature_and_filter_by_input_bucket(store):
    f = filters.span_filter("default", {"input_bucket": "4k-16k"})
    [big] = aggregates.rollup(store, f)
    assert big["requests"] == 2 and big["input_tokens"] == 10_000
    by_bucket = {
        r["input_bucket"]: r for r in aggregates.latency(store, SpanFilter("default"), ("input_bucket",))
    }
    assert by_bucket["4k-16k"]["requests"] == 2 and by_bucket["<1k"]["requests"] == 1
    assert by_bucket[None]["requests"] == 3  # failed calls report no usage: no bucket
    assert set(by_bucket["<1k"]) >= {"duration_ms", "ttft_ms", "tpot_ms"}


def test_cost_per_user_counts_the_traces_of_the_costliest_only(store):
    """Totals come from the rollups; traces, which only spans can count, for the top rows alone
    (a field equal to one of several values): u1's four traces, the others counted, not listed."""
    result = aggregates.cost_per(store, SpanFilter("default"), "user_id", top=1)
    assert result.count == 3 and [(r["user_id"], r["traces"]) for r in result.top] == [("u1", 4)]
    one_of = store.aggregate(
        SpanFilter("default", equals={"session_id": ("s1", "s3")}), ("session_id",), None, True
    )
    assert dict(zip(one_of["session_id"].to_pylist(), one_of["traces"].to_pylist(), strict=True)) == {
        "s1": 2,
        "s3": 2,
    }
    none_of = store.aggregate(SpanFilter("default", equals={"session_id": ()}), ("session_id",), None, True)
    assert none_of.num_rows == 0


@pytest.mark.parametrize(("group_by", "bucket"), [((), None), (("user_id",), None), (("tenant_id",), 60)])
def test_distinct_counts_alone_equal_the_whole_aggregates(store, group_by, bucket):
    """What a rollup read adds from spans is counted by a scan of its own: the same traces,
    sessions and users per group as the whole aggregate counts (duplicates excluded)."""
    f = SpanFilter("default")
    keys = (["bucket"] if bucket else []) + list(group_by)
    columns = [*keys, "traces", "sessions", "users"]

    def rows(table) -> list[tuple]:
        return sorted(tuple(str(v) for v in row.values()) for row in records(table.select(columns)))

    assert rows(store.distinct_counts(f, group_by, bucket)) == rows(
        store.aggregate(f, group_by, bucket, True)
    )


def test_cost_per_session(store):
    result = aggregates.cost_per(store, SpanFilter("default"), "session_id")
    assert result.count == 3 and [r["session_id"] for r in result.top] == ["s1", "s3", "s2"]
    costs = sorted(r["cost_usd"] for r in result.top)
    assert result.cost_usd.p50 == pytest.approx(costs[1])
    assert result.cost_usd.max == pytest.approx(costs[-1])
    assert result.cost_usd.mean == pytest.approx(sum(costs) / 3)
