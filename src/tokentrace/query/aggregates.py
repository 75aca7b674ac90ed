"""Rollups, latency percentiles and project totals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from tokentrace.query import rollups
from tokentrace.query.rates import derived_rows
from tokentrace.query.records import records
from tokentrace.query.rollups import ADDITIVE
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

QUANTILES = (0.5, 0.95, 0.99)
_Q_NAMES = ("p50", "p95", "p99")


@dataclass(slots=True)
class ProjectStats:
    """A project's cheap counts for polling. Tokens and cost leave out duplicates; spans and
    traces are those stored (sampling drops some); pending_spans are acked, not yet queryable."""

    project_id: str
    spans: int
    traces: int
    total_tokens: int
    cost_usd: float
    unpriced_spans: int
    last_span_end: str | None
    pending_spans: int


@dataclass(slots=True)
class Distribution:
    """How a value spreads over a population; all None when it is empty."""

    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


@dataclass(slots=True)
class CostPer:
    """Spend per session or per user (`by`): how many there are, the distribution of their cost,
    and the costliest (`top`: rows of `by`'s value, requests, traces, tokens, cost, errors, seen)."""

    by: str
    count: int
    cost_usd: Distribution
    top: list[dict[str, Any]]


def rollup(
    store: Store,
    f: SpanFilter,
    group_by: tuple[str, ...] = (),
    bucket_seconds: int | None = None,
    distinct: bool = True,
) -> list[dict[str, Any]]:
    """Requests, tokens by kind, cost, errors, retries per group (and time bucket), with the
    rates derived and, when grouped, each group's share of requests and cost (model mix).
    Totals come from the store's rollups wherever they hold the range and the read's keys
    (query/rollups.py), so they include traces sampled out; the counts of traces, sessions and
    users come from the spans still stored (`distinct=False` skips them and their rates)."""
    found = rollups.aggregate_table(store, f, group_by, bucket_seconds)
    if found is None:
        found = store.aggregate(f, group_by, bucket_seconds, distinct)
    elif distinct:
        found = _with_distinct(
            found, store.distinct_counts(f, group_by, bucket_seconds), group_by, bucket_seconds
        )
    return derived_rows(found, shares=bool(group_by))


def _with_distinct(
    table: pa.Table, spans: pa.Table, group_by: tuple[str, ...], bucket_seconds: int | None
) -> pa.Table:
    """Rollup rows with the distinct counts only spans have. Totals stay the rollups': sampling
    drops the detail of traces, never their numbers; the counts are of traces still stored."""
    bucketed = bucket_seconds is not None
    counted = {rollups.group_key(r, group_by, bucketed): r for r in records(spans)}
    names = _keys(group_by, bucketed)
    # (a table of no columns has no rows to list: ungrouped, every row is the one group)
    rows = records(table.select(names)) if names else [{}] * table.num_rows
    keys = [rollups.group_key(r, group_by, bucketed) for r in rows]
    for name in ("traces", "sessions", "users"):
        values = pa.array([counted.get(key, {}).get(name, 0) for key in keys], pa.int64())
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table


def _keys(group_by: tuple[str, ...], bucketed: bool) -> list[str]:
    return (["bucket"] if bucketed else []) + list(group_by)


def collapse(rows: list[dict[str, Any]], group_by: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Bucketed rollup rows summed over their time buckets, per group, costliest first: the
    range's rows without a second scan. Distinct counts (traces, sessions, users) are None.
    Ungrouped, there is always one row (zeros for an empty range)."""

    def start(row: dict[str, Any]) -> dict[str, Any]:
        into = {g: row[g] for g in group_by} | dict.fromkeys(ADDITIVE, 0)
        into |= {"traces": None, "sessions": None, "users": None, "first_seen": row.get("first_seen")}
        into |= {"last_seen": None, "errors_by_type": defaultdict(int)}
        return into

    merged: dict[tuple[Any, ...], dict[str, Any]] = {} if group_by else {(): start({})}
    for row in rows:
        key = tuple(row[g] for g in group_by)
        into = merged.get(key)
        if into is None:
            into = merged[key] = start(row)
        into["first_seen"] = into["first_seen"] or row["first_seen"]
        for k in ADDITIVE:
            into[k] += row[k]
        for error_type, n in row["errors_by_type"].items():
            into["errors_by_type"][error_type] += n
        into["last_seen"] = row["last_seen"]
    for row in merged.values():
        for error_type, n in row.pop("errors_by_type").items():
            row[f"errors_{error_type}"] = n
    if not merged:
        return []
    out = derived_rows(pa.Table.from_pylist(list(merged.values())), shares=bool(group_by))
    out.sort(key=lambda r: -r["cost_usd"])
    return out


def latency(
    store: Store,
    f: SpanFilter,
    group_by: tuple[str, ...] = (),
    measures: tuple[str, ...] = ("duration_ms", "ttft_ms", "tpot_ms"),
    bucket_seconds: int | None = None,
) -> list[dict[str, Any]]:
    """p50/p95/p99 of each measure over LLM calls, per group (group by `input_bucket` for the
    input-length breakdown) and time bucket if asked; TTFT and TPOT exist for streamed calls only.
    Ranges of SKETCH_MIN_RANGE or more come from the rollups' sketches where they can (within 1%)."""
    rows = rollups.quantiles(store, f, group_by, measures, QUANTILES, bucket_seconds)
    if rows is None:
        rows = records(store.quantiles(f, group_by, measures, QUANTILES, bucket_seconds))
    for row in rows:
        for measure in measures:
            values = row.pop(measure) or [None] * len(QUANTILES)
            row[measure] = dict(zip(_Q_NAMES, values, strict=True))
    return rows


def stats(store: Store, project_id: str, pending_spans: int = 0) -> ProjectStats:
    """Cheap project counts for polling; pending_spans are acked but not yet queryable."""
    return ProjectStats(project_id=project_id, **store.totals(project_id), pending_spans=pending_spans)


def quantile(values: list[float], q: float) -> float | None:
    """Linear-interpolated quantile (as DuckDB's quantile_cont) of values already in memory."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cost_per(store: Store, f: SpanFilter, entity: str, top: int = 20) -> CostPer:
    """Spend per session or per user (any groupable field): its distribution and the costliest,
    with their traces. Only the costliest are counted from spans (distinct counts are not in the
    rollups): a month's users all counted took seconds at 10M spans."""
    rows = [r for r in rollup(store, f, (entity,), distinct=False) if r[entity] is not None]
    costliest = rows[:top]
    if costliest:
        of_them = replace(f, equals={**f.equals, entity: tuple(r[entity] for r in costliest)})
        traced = store.distinct_counts(of_them, (entity,), None)
        traces = dict(zip(traced[entity].to_pylist(), traced["traces"].to_pylist(), strict=True))
        for row in costliest:
            row["traces"] = traces.get(row[entity], 0)
    costs = sorted(r["cost_usd"] for r in rows)
    distribution = Distribution(
        sum(costs) / len(costs) if costs else None,
        *(quantile(costs, q) for q in QUANTILES),
        costs[-1] if costs else None,
    )
    keep = ("requests", "traces", "total_tokens", "cost_usd", "errors", "first_seen", "last_seen")
    return CostPer(
        entity, len(rows), distribution, [{entity: r[entity], **{k: r[k] for k in keep}} for r in costliest]
    )
