"""Ranges answered from rollups: the whole buckets the store has rolled up come from its
rollups, the partial first bucket and the buckets not yet rolled up from its spans, merged into
the rows the spans alone would give (tested to agree: sums to the cent, percentiles within the
sketch's error, tokentrace/sketch.py).

Rollups hold every counted span whatever happens to span detail later (sampling, retention),
and reading 30 days of them is a scan of ~43k rows per group instead of every span. Per-minute
rollups are kept by canonical.ROLLUP_KEYS, hourly per-user ones by canonical.USER_ROLLUP_KEYS;
coarser tables are summed from them (hours, hours by model, user days: canonical.GRAINS), and a
read takes whole hours or days from those, the edges from the finer rows (`by_grain`).
A read that filters or groups by anything else (session, span name, input bucket, user with
model), or asks for distinct counts, goes to spans.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def by_grain(
    store: Store, rolled: SpanFilter, grain: Grain, group_by: tuple[str, ...], bucket_seconds: int | None
) -> list[tuple[Grain, SpanFilter]]:
    """A rolled-up range of `grain` as the reads that answer it: the whole buckets of a coarser
    table summed from `grain`'s rows (the hours of the minutes; by model, the hours by model)
    where it has them and holds the read's keys, the fewest keys first; `grain`'s rows at the
    edges."""
    needed = {*rolled.equals, *group_by}
    coarser = [g for g in GRAINS if _summed_from(g, grain) and needed <= set(g.keys)]
    for coarse in sorted(coarser, key=lambda g: len(g.keys)):
        if (bucket_seconds or 0) % coarse.seconds:
            continue
        inner = split(rolled, store.rolled_up_until(coarse), coarse)
        if inner is not None:
            return [(coarse, inner.rollups), *((grain, edge) for edge in inner.spans)]
    return [(grain, rolled)]


def _summed_from(coarse: Grain, grain: Grain) -> bool:
    """Whether `coarse` is summed from `grain`'s rows, directly or through another table."""
    source = coarse.rolled_from
    while source is not None and source is not grain:
        source = source.rolled_from
    return source is not None


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
    table = aggregate_table(store, f, group_by, bucket_seconds)
    return None if table is None else records(table)


def aggregate_table(
    store: Store, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None
) -> pa.Table | None:
    """`aggregate` as the Arrow table it is read as."""
    grain = answerable(f, group_by, bucket_seconds)
    if grain is None:
        return None
    parts = split(f, store.rolled_up_until(grain), grain)
    if parts is None:
        return None
    reads = [
        partial(store.rollup_aggregate, part, group_by, bucket_seconds, read_grain)
        for read_grain, part in by_grain(store, parts.rollups, grain, group_by, bucket_seconds)
    ]
    reads += [partial(store.aggregate, part, group_by, bucket_seconds, False) for part in parts.spans]
    tables = _at_once(reads)
    keys = (["bucket"] if bucket_seconds is not None else []) + list(group_by)
    merged = _summed(tables, keys)
    order = [("bucket", "ascending")] if bucket_seconds is not None else [("cost_usd", "descending")]
    return merged.sort_by(order)


#: The most a group's combined key may number before it is renumbered (`_group_codes`).
COMBINED_MOST = 1 << 62
#: Threads that read a range's other parts while the caller reads its first, kept between
#: reads: starting three threads took ~7 ms a read here. (No thread starts before the first.)
_READERS = ThreadPoolExecutor(4, thread_name_prefix="tokentrace-reads")


def _at_once(reads: list[Callable[[], pa.Table]]) -> list[pa.Table]:
    """The store's reads of a range's parts, at once (a store reads on its own cursor each
    time, as for the server's concurrent requests): a month by user is three reads (whole days,
    the last day's hours, the spans not rolled up yet), ~60 ms one after the other at 10M spans,
    ~36 at once."""
    if len(reads) < 2:
        return [read() for read in reads]
    others = [_READERS.submit(read) for read in reads[1:]]
    return [reads[0](), *(other.result() for other in others)]


def _summed(tables: list[pa.Table], keys: list[str]) -> pa.Table:
    """Aggregate rows of several parts of a range as one table, a row per group (in Arrow: a
    month of hourly rows by model is 3,600 rows, and dicts of them cost more than the SQL)."""
    found = [t for t in tables if t.num_rows]
    if len(found) <= 1:
        return found[0] if found else tables[0]
    schema = found[0].schema
    table = pa.concat_tables([t.select(schema.names).cast(schema) for t in found])
    summed = table.group_by(keys, use_threads=False).aggregate(
        [(n, "sum") for n in _SUMMED] + [("first_seen", "min"), ("last_seen", "max")]
    )
    columns = {name: summed[name] for name in keys}
    columns |= {n: summed[f"{n}_sum"] for n in _SUMMED}
    columns |= {"first_seen": summed["first_seen_min"], "last_seen": summed["last_seen_max"]}
    return pa.table(
        [
            columns[n] if n in columns else pa.nulls(summed.num_rows, schema.field(n).type)
            for n in schema.names
        ],
        schema=schema,
    )


def _group_codes(table: pa.Table, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group (rows with equal keys share one, nulls equal) and each group's first row.

    The keys' codes are made one number (mixed radix, so groups keep the order of their rows of
    codes), whose unique values numpy finds ~5x faster than unique rows: 6 -> 1.5 ms a month by
    model and hour. A number that would pass COMBINED_MOST is renumbered densely first."""
    combined = np.zeros(table.num_rows, dtype=np.int64)
    size = 1
    for key in keys:
        encoded = pc.dictionary_encode(table[key].combine_chunks())
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        width = len(encoded.dictionary) + 1  # (code 0: null)
        if size * width > COMBINED_MOST:
            _, combined = np.unique(combined, return_inverse=True)
            size = int(combined.max()) + 1 if len(combined) else 1
        combined, size = combined * width + codes, size * width
    _, first, groups = np.unique(combined, return_index=True, return_inverse=True)
    return groups.reshape(-1), first


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
    reads: list[tuple[Grain | None, SpanFilter]] = [
        *by_grain(store, parts.rollups, MINUTE, group_by, bucket_seconds)
    ]
    reads += [(None, part) for part in parts.spans]
    table = store.sketch(reads, group_by, measures, bucket_seconds)
    lengths = pc.list_value_length(table["sketch_index"]).fill_null(0).to_numpy(zero_copy_only=False)
    if not lengths.all():  # (filtered only then: a month by model and hour is 12 MB of lists)
        table = table.filter(pa.array(lengths > 0))  # an empty range's one ungrouped row per measure
        lengths = lengths[lengths > 0]
    if not table.num_rows:
        return []
    # Every measure's groups at once: a group's row holds each measure it has (a group with no
    # TTFT has none), its calls the most any measure counted.
    groups, first = _group_codes(table, keys)
    out = records(table.select(keys).take(pa.array(first))) if keys else [{}]
    measure_codes = pc.dictionary_encode(table["measure"]).combine_chunks()
    named = measure_codes.dictionary.to_pylist()
    # Every row's cells at once, each with its group and measure (a measure's cells picked in
    # numpy, not its rows filtered out of the table first: 6-9 ms a month by model and hour).
    indexes = pc.list_flatten(table["sketch_index"]).to_numpy(zero_copy_only=False)
    counts = pc.list_flatten(table["count"]).to_numpy(zero_copy_only=False)
    cell_groups = np.repeat(groups, lengths)
    cell_measures = np.repeat(measure_codes.indices.to_numpy(), lengths)
    requests = np.zeros(len(out), np.int64)
    for measure in measures:
        # this measure's cells (none when no call had it)
        mine = cell_measures == (named.index(measure) if measure in named else -1)
        totals, values = _quantiles(cell_groups[mine], indexes[mine], counts[mine], len(out), qs)
        requests = np.maximum(requests, totals)
        for row, n, q in zip(out, totals.tolist(), values.tolist(), strict=True):
            row[measure], row[f"{measure}_count"] = (q if n else None), n
    for row, n in zip(out, requests.tolist(), strict=True):
        row["requests"] = n
    out.sort(key=(lambda r: r["bucket"]) if bucket_seconds is not None else (lambda r: -r["requests"]))
    return out


def _quantiles(
    groups: np.ndarray, indexes: np.ndarray, counts: np.ndarray, n_groups: int, qs: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Per group of `n_groups` (any may have no cells), its count and its quantiles (a row of
    `qs`) from the cells given (`groups[i]` the group of cell i). numpy reads the quantiles of
    all groups at once: a month by model and hour is ~3,000 groups."""
    present = np.bincount(groups, minlength=n_groups) > 0
    n_present = int(present.sum())
    if n_present < n_groups:  # the groups with cells, numbered without gaps
        groups = (np.cumsum(present) - 1)[groups]
    found = sketch.dense_quantiles(groups, indexes, counts, n_present, qs)
    if found is None:  # too many groups by buckets to lay out: sort the cells instead
        merged = sketch.merge_cells(groups, indexes.astype(np.int16), counts, n_present)
        found = sketch.grouped_quantiles(*merged, qs)
    totals = np.zeros(n_groups, np.int64)
    values = np.full((n_groups, len(qs)), np.nan)
    totals[present], values[present] = found
    return totals, values
