"""Named measures of a time window, per group: what alert rules compare against thresholds.

Each name is one number per group over [since, until): a rollup rate, an hourly rate, an error
rate of one type, or a latency percentile. Alert rules, their Prometheus twins and the API
all name measures from this list.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from typing import Any

from tokentrace.canonical import ERROR_TYPES
from tokentrace.query.aggregates import latency, rollup
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

Group = tuple[Any, ...]

#: Per-hour rates: measure → the rollup total it spreads over the window.
HOURLY = {"cost_per_hour": "cost_usd", "tokens_per_hour": "total_tokens", "requests_per_hour": "requests"}
#: Measures read straight off a rollup row.
ROLLUP = (
    "requests",
    "cost_usd",
    "total_tokens",
    "cost_per_request",
    "tokens_per_request",
    "input_tokens_per_request",
    "cost_per_trace",
    "tokens_per_trace",
    "error_rate",
    "cache_hit_rate",
    "retry_rate",
    "attempts_per_request",
    "truncation_rate",
    "output_input_ratio",
)
#: `<error type>_rate`: calls failing with that type, per call.
ERROR_RATES = {f"{t}_rate": t for t in ERROR_TYPES}
#: Latency percentiles over LLM calls: measure → (column, quantile name).
LATENCY = {
    f"{q}_{name}": (column, q)
    for name, column in (("latency_ms", "duration_ms"), ("ttft_ms", "ttft_ms"), ("tpot_ms", "tpot_ms"))
    for q in ("p50", "p95", "p99")
}
#: Measures that also exist per time bucket (anomaly history); latency percentiles do not.
BUCKETED = (*ROLLUP, *HOURLY, *ERROR_RATES)
MEASURES = (*BUCKETED, *LATENCY)
#: Measures that count volume: an empty time bucket is a zero, not a gap.
VOLUME = frozenset({"requests", "cost_usd", "total_tokens", *HOURLY})


#: `score_rate:NAME<VALUE` (or `>`): the share of the scored calls whose score NAME lies past
#: VALUE, e.g. `score_rate:groundedness<0.5`; its `requests` are the scored calls.
_SCORE_RATE = re.compile(r"score_rate:([A-Za-z0-9_.:-]{1,64})([<>])(-?\d+(?:\.\d+)?)")


class UnknownMeasure(ValueError):
    """A measure name not in MEASURES."""


def score_rate(name: str) -> tuple[str, str, float] | None:
    """(score name, "<" or ">", bound) of a `score_rate:` measure; None for any other."""
    found = _SCORE_RATE.fullmatch(name)
    return (found[1], found[2], float(found[3])) if found else None


def check(name: str) -> str:
    """`name` if it is a measure, else a clear error listing them."""
    if name not in MEASURES and score_rate(name) is None:
        raise UnknownMeasure(
            f"unknown measure {name!r}; use one of: {', '.join(MEASURES)}, "
            "or score_rate:NAME<VALUE (the share of scored calls whose score is below VALUE; or >)"
        )
    return name


def _from_row(row: dict[str, Any], name: str, hours: float) -> float | None:
    if name in HOURLY:
        return row[HOURLY[name]] / hours if hours > 0 else None
    if name in ERROR_RATES:
        return row["errors_by_type"].get(ERROR_RATES[name], 0) / row["requests"] if row["requests"] else None
    return row[name]


def _hours(since: datetime | None, until: datetime | None) -> float:
    if since is None or until is None:
        raise ValueError("a measure needs a bounded window (since and until)")
    return (until - since).total_seconds() / 3600


def measure(store: Store, f: SpanFilter, group_by: tuple[str, ...], name: str) -> dict[Group, dict[str, Any]]:
    """Per group over the filter's window: {"value", "requests"} of measure `name`."""
    check(name)
    hours = _hours(f.since, f.until)
    out: dict[Group, dict[str, Any]] = {}
    scored = score_rate(name)
    if scored is not None:
        score, op, bound = scored
        counts: dict[Group, list[int]] = defaultdict(lambda: [0, 0])
        for row in records(store.score_summary(f, group_by, score, (op, bound))):
            group = counts[tuple(row[g] for g in group_by)]
            group[0] += row["scores"]
            group[1] += row["beyond"] or 0
        return {
            g: {"value": past / total if total else None, "requests": total}
            for g, (total, past) in counts.items()
        }
    if name in LATENCY:
        column, q = LATENCY[name]
        for row in latency(store, f, group_by, (column,)):
            out[tuple(row[g] for g in group_by)] = {"value": row[column][q], "requests": row["requests"]}
        return out
    for row in rollup(store, f, group_by):
        out[tuple(row[g] for g in group_by)] = {
            "value": _from_row(row, name, hours),
            "requests": row["requests"],
        }
    return out


def history(
    store: Store, f: SpanFilter, group_by: tuple[str, ...], name: str, bucket_seconds: int
) -> dict[Group, list[float]]:
    """Per group, the measure's values over the time buckets of the filter's range (a sample,
    unordered); volume measures count an empty bucket as zero, the others skip it."""
    if check(name) not in BUCKETED:
        raise UnknownMeasure(f"{name} has no per-bucket history; use one of: {', '.join(BUCKETED)}")
    hours = bucket_seconds / 3600
    values: dict[Group, dict[str, float]] = defaultdict(dict)
    for row in rollup(store, f, group_by, bucket_seconds):
        value = _from_row(row, name, hours)
        if value is not None:
            values[tuple(row[g] for g in group_by)][row["bucket"]] = value
    buckets = int(_hours(f.since, f.until) * 3600 // bucket_seconds)
    out = {}
    for group, by_bucket in values.items():
        series = list(by_bucket.values())
        if name in VOLUME:
            series += [0.0] * max(buckets - len(series), 0)
        out[group] = series
    return out
