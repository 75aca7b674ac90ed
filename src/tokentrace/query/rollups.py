"""Ranges answered from rollups: the whole buckets the store has rolled up come from its
rollups, the partial first bucket and the buckets not yet rolled up from its spans, merged into
the rows the spans alone would give (tested to agree: sums to the cent, percentiles within the
sketch's error, tokentrace/sketch.py).

Rollups hold every counted span whatever happens to span detail later (sampling, retention),
and reading 30 days of them is a scan of ~43k rows per group instead of every span. Per-minute
rollups are kept by canonical.ROLLUP_KEYS; hourly per-user ones by canonical.USER_ROLLUP_KEYS.
A read that filters or groups by anything else (session, span name, input bucket, user with
model), or asks for distinct counts, goes to spans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from tokentrace import sketch
from tokentrace.canonical import ERROR_TYPES, GRAINS, MINUTE, ROLLUP_COUNTS, SKETCHED_MEASURES, Grain
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: Percentiles come from sketches only over ranges at least this long: shorter ones are cheap
#: to answer exactly from spans.
SKETCH_MIN_RANGE = timedelta(hours=6)
#: Fields that add up across rollup rows, time buckets and the parts of a split range
#: (distinct counts of traces, sessions and users do not).
ADDITIVE = (*ROLLUP_COUNTS, "answered", "errors")
_SUMMED = (*ADDITIVE, *(f"errors_{t}" for t in ERROR_TYPES))


@dataclass(frozen=True)
class Split:
    """One range as rollups (whole buckets before the store's mark) and spans (the rest)."""

    rollups: SpanFilter
    spans: tuple[SpanFilter, ...]


def split(f: SpanFilter, rolled_up_until: datetime | None, grain: Grain = MINUTE) -> Split | None:
    """How `f`'s range divides between `grain`'s rollups and spans; None when no whole
    rolled-up bucket lies in it."""
    if rolled_up_until is None:
        return None
    first = None
    if f.since is not None:
        first = grain.floor(f.since.astimezone(UTC))
        if first < f.since:
            first += timedelta(seconds=grain.seconds)
    last = rolled_up_until if f.until is None else min(grain.floor(f.until.astimezone(UTC)), rolled_up_until)
    if first is not None and first >= last:
        return None
    spans = []
    if f.since is not None and first is not None and f.since < first:
        spans.append(replace(f, since=f.since, until=first))
    if f.until is None or f.until > last:
        spans.append(replace(f, since=last, until=f.until))
    return Split(replace(f, since=first, until=last), tuple(spans))


def answerable(f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None) -> Grain | None:
    """The finest rollups that hold what this read filters and groups by, if any."""
    if f.name_contains:
        return None
    for grain in GRAINS:
        keys = set(grain.keys)
        if (
            set(f.equals) <= keys
            and set(group_by) <= keys
            and (bucket_seconds is None or bucket_seconds % grain.seconds == 0)
        ):
            return grain
    return None


def group_key(row: dict[str, Any], group_by: tuple[str, ...], bucketed: bool) -> tuple[Any, ...]:
    """A result row's group: its time bucket (if bucketed) and its group-by values."""
    return ((row["bucket"],) if bucketed else ()) + tuple(row[g] for g in group_by)


def aggregate(
    store: Store, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None
) -> list[dict[str, Any]] | None:
    """The store's aggregate rows without distinct counts, from rollups where they hold the
    range; None when they hold none of it or cannot answer this read."""
    grain = answerable(f, group_by, bucket_seconds)
    if grain is None:
        return None
    parts = split(f, store.rolled_up_until(grain), grain)
    if parts is None:
        return None
    rows = records(store.rollup_aggregate(parts.rollups, group_by, bucket_seconds, grain))
    for part in parts.spans:
        rows += records(store.aggregate(part, group_by, bucket_seconds, distinct=False))
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = group_key(row, group_by, bucket_seconds is not None)
        into = merged.get(key)
        if into is None:
            merged[key] = row
            continue
        for name in _SUMMED:
            into[name] += row[name]
        into["first_seen"] = min(filter(None, (into["first_seen"], row["first_seen"])), default=None)
        into["last_seen"] = max(filter(None, (into["last_seen"], row["last_seen"])), default=None)
    out = list(merged.values())
    if bucket_seconds is not None:
        out.sort(key=lambda r: r["bucket"])
    else:
        out.sort(key=lambda r: -r["cost_usd"])
    return out


def _merged(tables: list[pa.Table], keys: list[str]) -> list[dict[str, Any]]:
    """Sketch rows (keys…, sketch_index, count) of several parts merged: one row per group with
    its buckets' indexes and counts as lists (Arrow does the merging: ~300k rows for a month
    by model and hour)."""
    parts = [t.select([*keys, "sketch_index", "count"]) for t in tables if t.num_rows]
    if not parts:
        return []
    types = {"sketch_index": pa.int32(), "count": pa.int64()}
    schema = pa.schema([(f.name, types.get(f.name, f.type)) for f in parts[0].schema])
    table = pa.concat_tables([part.cast(schema) for part in parts])
    summed = table.group_by([*keys, "sketch_index"], use_threads=False).aggregate([("count", "sum")])
    if not keys:
        return [
            {"sketch_index": summed["sketch_index"].to_pylist(), "count": summed["count_sum"].to_pylist()}
        ]
    merged = summed.group_by(keys, use_threads=False).aggregate(
        [("sketch_index", "list"), ("count_sum", "list")]
    )
    return records(merged.rename_columns([*keys, "sketch_index", "count"]))


def quantiles(
    store: Store,
    f: SpanFilter,
    group_by: tuple[str, ...],
    measures: tuple[str, ...],
    qs: tuple[float, ...],
    bucket_seconds: int | None,
) -> list[dict[str, Any]] | None:
    """The store's quantiles rows from latency sketches; None when the range is shorter than
    SKETCH_MIN_RANGE, rollups hold none of it, or cannot answer this read."""
    if f.since is None or (f.until or datetime.now(UTC)) - f.since < SKETCH_MIN_RANGE:
        return None
    if answerable(f, group_by, bucket_seconds) is not MINUTE or not set(measures) <= set(SKETCHED_MEASURES):
        return None
    parts = split(f, store.rolled_up_until())
    if parts is None:
        return None
    bucketed = bucket_seconds is not None
    keys = (["bucket"] if bucketed else []) + list(group_by)
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for measure in measures:
        tables = [store.sketch(parts.rollups, group_by, measure, bucket_seconds, from_rollups=True)]
        tables += [
            store.sketch(p, group_by, measure, bucket_seconds, from_rollups=False) for p in parts.spans
        ]
        for row in _merged(tables, keys):
            key = tuple(row[k] for k in keys)
            into = groups.setdefault(key, {k: row[k] for k in keys})
            into[measure] = sketch.quantiles(zip(row["sketch_index"], row["count"], strict=True), qs)
            into[f"{measure}_count"] = sum(row["count"])
    out = []
    for row in groups.values():
        for measure in measures:
            row.setdefault(measure, None)
            row.setdefault(f"{measure}_count", 0)
        row["requests"] = max(row[f"{m}_count"] for m in measures)
        out.append(row)
    out.sort(key=(lambda r: r["bucket"]) if bucketed else (lambda r: -r["requests"]))
    return out
