"""The ingested spans of a project as Prometheus metric families (what GET /metrics serves).

Totals since the first span, from every source that sent spans (the SDK, other libraries'
instrumentations, the gateway), so counters only grow while spans are kept. Names follow the
OpenTelemetry GenAI metrics where one exists (gen_ai_client_token_usage,
gen_ai_client_operation_duration_seconds, gen_ai_server_time_to_first_token_seconds); the
rest are tokentrace_*. Labels are canonical field names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from tokentrace.canonical import ERROR_TYPES
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: Labels by default: tenant_id can be switched off and user_id on (`--metric-labels`).
DEFAULT_LABELS = ("request_model", "provider", "feature", "prompt_template", "tenant_id")

TOKEN_TYPES = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_tokens",
    "cache_write": "cache_write_tokens",
    "reasoning": "reasoning_tokens",
}
# OpenTelemetry's advisory bucket boundaries for these instruments.
TOKEN_BUCKETS = tuple(float(4**n) for n in range(14))  # 1 … 67,108,864 tokens
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)

#: Counter name (without _total) → (help, the rollup column it counts).
COUNTERS = {
    "tokentrace_requests": ("LLM calls (each attempt an app makes is a call)", "requests"),
    "tokentrace_answered": ("LLM calls that answered (did not fail)", "answered"),
    "tokentrace_cost_usd": ("Cost of LLM calls in US dollars, priced at ingest", "cost_usd"),
    "tokentrace_retries": ("Spans that were retries (retry attempt above 0)", "retries"),
    "tokentrace_sdk_resends": ("Resends an SDK's own retry loop made below an LLM call", "http_resends"),
    "tokentrace_truncated": ("Answered LLM calls stopped by the token limit", "truncated"),
}
#: Histogram name → (help, measure column, bucket bounds in the metric's unit, column per unit).
HISTOGRAMS = {
    "gen_ai_client_operation_duration_seconds": (
        "Duration of LLM calls",
        "duration_ms",
        DURATION_BUCKETS,
        1000.0,
    ),
    "gen_ai_server_time_to_first_token_seconds": (
        "Time to first token of streamed LLM calls",
        "ttft_ms",
        TTFT_BUCKETS,
        1000.0,
    ),
    "gen_ai_server_time_per_output_token_seconds": (
        "Time per output token after the first, of streamed LLM calls",
        "tpot_ms",
        TPOT_BUCKETS,
        1000.0,
    ),
}


def _label_values(row: dict[str, Any], project: str, labels: tuple[str, ...]) -> list[str]:
    return [project, *("" if row[label] is None else str(row[label]) for label in labels)]


def _counters(rows: list[dict[str, Any]], project: str, labels: tuple[str, ...]) -> Iterator[Metric]:
    names = ["project", *labels]
    for name, (doc, column) in COUNTERS.items():
        family = CounterMetricFamily(name, doc, labels=names)
        for row in rows:
            family.add_metric(_label_values(row, project, labels), row[column])
        yield family
    tokens = CounterMetricFamily(
        "tokentrace_tokens", "Tokens by type, from the providers' usage", labels=[*names, "type"]
    )
    errors = CounterMetricFamily(
        "tokentrace_errors", "Failed LLM calls by error type", labels=[*names, "error_type"]
    )
    for row in rows:
        values = _label_values(row, project, labels)
        for kind, column in TOKEN_TYPES.items():
            tokens.add_metric([*values, kind], row[column])
        for error_type in ERROR_TYPES:
            if count := row[f"errors_{error_type}"]:
                errors.add_metric([*values, error_type], count)
    yield tokens
    yield errors


def _histogram_samples(
    store: Store, f: SpanFilter, labels: tuple[str, ...], column: str, bounds: tuple[float, ...], scale: float
) -> Iterator[tuple[dict[str, Any], list[tuple[str, float]], float]]:
    table = store.histogram(f, labels, column, tuple(b * scale for b in bounds))
    for row in records(table):
        buckets = [(repr(bound), row[f"le_{n}"]) for n, bound in enumerate(bounds)]
        yield row, [*buckets, ("+Inf", row["count"])], row["sum"] / scale


def families(store: Store, project: str, labels: tuple[str, ...] = DEFAULT_LABELS) -> Iterator[Metric]:
    """Every metric family of `project`, labelled by `labels` (canonical groupable fields)."""
    f = SpanFilter(project)
    rows = records(store.aggregate(f, labels, None, distinct=False))
    yield from _counters(rows, project, labels)
    names = ["project", *labels]
    usage = HistogramMetricFamily(
        "gen_ai_client_token_usage", "Tokens used per LLM call", labels=[*names, "gen_ai_token_type"]
    )
    for kind in ("input", "output"):
        for row, buckets, total in _histogram_samples(
            store, f, labels, TOKEN_TYPES[kind], TOKEN_BUCKETS, 1.0
        ):
            usage.add_metric([*_label_values(row, project, labels), kind], buckets, total)
    yield usage
    for name, (doc, column, bounds, scale) in HISTOGRAMS.items():
        family = HistogramMetricFamily(name, doc, labels=names)
        for row, buckets, total in _histogram_samples(store, f, labels, column, bounds, scale):
            family.add_metric(_label_values(row, project, labels), buckets, total)
        yield family
