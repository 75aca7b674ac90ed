"""A range at a glance: its headline numbers and each one's time series."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tokentrace.query.aggregates import collapse, latency, rollup
from tokentrace.query.records import iso_ns
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store
from tokentrace.timerange import bucket_for

#: Series drawn by the overview, in order.
SERIES = (
    "cost_usd",
    "tokens_per_second",
    "requests",
    "error_rate",
    "p95_latency_ms",
    "p95_ttft_ms",
    "cache_hit_rate",
)
# time_bucket's origin for intervals of days and weeks (a Monday); shorter ones divide a day.
_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
#: The span of the "now" rates: a range's average hides a spike at its end (the last quarter
#: hour of a day is 1% of it).
RECENT = timedelta(minutes=15)


@dataclass(slots=True)
class Overview:
    """A range at a glance: its totals (a collapsed rollup row plus cost per hour, tokens per
    second, p95 latency and TTFT; `cost_per_hour_now` is the rate over the range's last RECENT,
    and `recent_seconds` how long that is) and each SERIES name's value per bucket start in `time`."""

    since: str
    until: str
    bucket_seconds: int
    totals: dict[str, Any]
    time: list[str]
    series: dict[str, list[Any]]


def _bucket_start(at: datetime, step: timedelta) -> datetime:
    """The start of the time bucket `at` falls in, aligned as the store aligns them."""
    return _ORIGIN + step * ((at - _ORIGIN) // step)


def buckets(since: datetime, until: datetime, seconds: int) -> list[str]:
    """The starts of the time buckets covering [since, until), aligned as the store aligns them
    and written as rollup rows name them (ISO 8601 UTC to the nanosecond)."""
    step = timedelta(seconds=seconds)
    start = _bucket_start(since, step)
    out = []
    while start < until:
        out.append(iso_ns(int(start.timestamp()) * 1_000_000_000))
        start += step
    return out


def timeline(f: SpanFilter, now: datetime | None = None) -> tuple[SpanFilter, int, list[str]]:
    """A chart's view of the filter: bounded (until defaults to now), its bucket size, and the
    bucket starts covering it."""
    until = f.until or now or datetime.now(UTC)
    if f.since is None:
        raise ValueError("a chart needs a range start (since)")
    step = bucket_for(f.since, until)
    return replace(f, until=until), step, buckets(f.since, until, step)


def overview(store: Store, f: SpanFilter, now: datetime | None = None) -> Overview:
    """Totals of the range (until defaults to now) with spend per hour and tokens per second,
    p95 latency and TTFT, and every headline number per time bucket (one bucketed rollup: the
    totals are its sum)."""
    bounded, step, times = timeline(f, now)
    until = bounded.until
    seconds = (until - f.since).total_seconds()
    rows = rollup(store, bounded, (), step, distinct=False)
    by_bucket = {r["bucket"]: r for r in rows}
    percentiles = {r["bucket"]: r for r in latency(store, bounded, (), ("duration_ms", "ttft_ms"), step)}
    whole = latency(store, bounded, (), ("duration_ms", "ttft_ms"))
    totals = collapse(rows)[0]
    totals |= {
        "cost_per_hour": totals["cost_usd"] / (seconds / 3600),
        "tokens_per_second": totals["total_tokens"] / seconds,
        "p95_latency_ms": whole[0]["duration_ms"]["p95"] if whole else None,
        "p95_ttft_ms": whole[0]["ttft_ms"]["p95"] if whole else None,
    }
    series: dict[str, list[Any]] = {name: [] for name in SERIES}
    for t in times:
        row, q = by_bucket.get(t), percentiles.get(t)
        series["cost_usd"].append(row["cost_usd"] if row else 0.0)
        series["tokens_per_second"].append(row["total_tokens"] / step if row else 0.0)
        series["requests"].append(row["requests"] if row else 0)
        series["error_rate"].append(row["error_rate"] if row else None)
        series["cache_hit_rate"].append(row["cache_hit_rate"] if row else None)
        series["p95_latency_ms"].append(q["duration_ms"]["p95"] if q else None)
        series["p95_ttft_ms"].append(q["ttft_ms"]["p95"] if q else None)
    # The rate now: the last buckets that cover RECENT (the last one is cut at `until`).
    width = timedelta(seconds=step)
    first_start = _bucket_start(f.since, width)
    recent_start = max(_bucket_start(until - RECENT, width), first_start)
    last = len(times) - (recent_start - first_start) // width
    recent_seconds = max((until - max(recent_start, f.since)).total_seconds(), 1.0)
    totals["cost_per_hour_now"] = sum(series["cost_usd"][-last:]) / recent_seconds * 3600
    totals["recent_seconds"] = recent_seconds
    return Overview(f.since.isoformat(), until.isoformat(), step, totals, times, series)
