"""The latency sketch kept in rollups: counts of values in logarithmic buckets (as DDSketch).

A value x > 0 falls in bucket i = ceil(ln x / ln gamma), gamma = (1 + a) / (1 - a); the bucket's
representative value is within a relative error `a` (RELATIVE_ACCURACY) of every value in it.
Sketches merge by adding counts per bucket, so quantiles over any range and grouping come from
per-minute rollups with a relative error of at most `a` (1%) on the order statistic asked for.
Both stores compute the bucket with the same expression (`index_sql`): their sketches are equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LN_GAMMA = math.log(GAMMA)
#: Values at or below this (ms) share one bucket, read back as 0: sub-microsecond latency is noise.
MIN_VALUE = 0.001
ZERO_BUCKET = -32768


def index_sql(column: str) -> str:
    """SQL (DuckDB and ClickHouse alike) for the bucket of `column`; NULL stays NULL."""
    return (
        f"(CASE WHEN {column} > {MIN_VALUE!r} THEN CAST(ceil(ln({column}) / {LN_GAMMA!r}) AS SMALLINT) "
        f"WHEN {column} IS NOT NULL THEN {ZERO_BUCKET} END)"
    )


def index_of(value: float) -> int:
    """The bucket of one value (as `index_sql` computes it)."""
    return math.ceil(math.log(value) / LN_GAMMA) if value > MIN_VALUE else ZERO_BUCKET


def value_of(index: int) -> float:
    """A bucket's representative value: within RELATIVE_ACCURACY of anything in it."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**index / (GAMMA + 1)


def quantiles(counts: Iterable[tuple[int, int]], qs: Iterable[float]) -> list[float | None]:
    """Quantiles from (bucket, count) pairs, interpolated between order statistics as DuckDB's
    quantile_cont is, so the exact and the sketched answer differ by the sketch's error only."""
    buckets = sorted((index, n) for index, n in counts if n)
    total = sum(n for _, n in buckets)
    if not total:
        return [None for _ in qs]

    def order_statistic(rank: int) -> float:  # the value of the rank-th smallest (0-based)
        seen = 0
        for index, n in buckets:
            seen += n
            if rank < seen:
                return value_of(index)
        return value_of(buckets[-1][0])

    out = []
    for q in qs:
        position = q * (total - 1)
        low = int(position)
        lo, hi = order_statistic(low), order_statistic(min(low + 1, total - 1))
        out.append(lo + (hi - lo) * (position - low))
    return out


def grouped_quantiles(
    indexes: np.ndarray, counts: np.ndarray, lengths: np.ndarray, qs: Iterable[float]
) -> tuple[np.ndarray, np.ndarray]:
    """`quantiles` of many sketches at once (a month by model and hour is ~3,000): `indexes`
    and `counts` hold every group's buckets, one group after another and each in ascending
    order, with counts > 0; `lengths` how many buckets each group has. Per group: its count,
    and its quantiles as a row of len(qs)."""
    seen = np.cumsum(counts)
    through = seen[np.cumsum(lengths) - 1]  # counted up to each group's end
    before = np.concatenate(([0], through[:-1]))
    totals = through - before
    values = np.where(indexes == ZERO_BUCKET, 0.0, 2 * GAMMA ** indexes.astype(np.float64) / (GAMMA + 1))

    def order_statistic(rank: np.ndarray) -> np.ndarray:  # per group, the rank-th smallest
        return values[np.searchsorted(seen, before + rank, side="right")]

    return totals, _interpolated(order_statistic, totals, qs)


def _interpolated(order_statistic, totals: np.ndarray, qs: Iterable[float]) -> np.ndarray:
    """Each group's quantiles (a row of `qs`), interpolated between its order statistics as
    DuckDB's quantile_cont is; `order_statistic(rank)` gives every group's rank-th smallest."""
    qs = list(qs)
    out = np.empty((len(totals), len(qs)))
    for column, q in enumerate(qs):
        position = q * (totals - 1)
        low = np.floor(position).astype(np.int64)
        lo, hi = order_statistic(low), order_statistic(np.minimum(low + 1, totals - 1))
        out[:, column] = lo + (hi - lo) * (position - low)
    return out


#: The most cells (groups by buckets) `dense_quantiles` lays out: 16M float64s, 128 MB at worst.
DENSE_CELLS = 1 << 24


def dense_quantiles(
    groups: np.ndarray, indexes: np.ndarray, counts: np.ndarray, n_groups: int, qs: Iterable[float]
) -> tuple[np.ndarray, np.ndarray] | None:
    """`grouped_quantiles` of cells as a store hands them (`groups[i]` the group of cell i; any
    order, a bucket possibly repeated) without merging them first: one bincount lays every group's
    buckets out as a row of a groups-by-buckets histogram, so its running sum is every group's
    running count at once. None when that histogram would pass DENSE_CELLS (then merge_cells).

    A month by model and hour is ~3,000 groups over a few hundred buckets: a few million cells,
    cheaper to count than 600k cells are to sort."""
    if not len(indexes):
        return np.zeros(n_groups, np.int64), np.full((n_groups, len(list(qs))), np.nan)
    real = indexes != ZERO_BUCKET
    highest = int(np.max(indexes, where=real, initial=ZERO_BUCKET))
    if highest == ZERO_BUCKET:  # every value in the zero bucket
        lowest, width = 1, 1
    else:
        lowest = int(np.min(indexes, where=real, initial=highest))
        width = highest - lowest + 2  # column 0: the zero bucket
    if width * n_groups > DENSE_CELLS:
        return None
    # (the zero bucket, below every other, comes out negative: column 0)
    column = np.maximum(indexes.astype(np.int64) - (lowest - 1), 0)
    dense = np.bincount(groups.astype(np.int64) * width + column, weights=counts, minlength=n_groups * width)
    seen = np.cumsum(dense)
    through = seen[width - 1 :: width]  # counted up to each group's end
    before = np.concatenate(([0.0], through[:-1]))
    totals = through - before
    values = 2 * GAMMA ** (np.arange(width, dtype=np.float64) + lowest - 1) / (GAMMA + 1)
    values[0] = 0.0

    def order_statistic(rank: np.ndarray) -> np.ndarray:  # per group, the rank-th smallest
        return values[np.searchsorted(seen, before + rank, side="right") % width]

    totals = totals.astype(np.int64)
    return totals, _interpolated(order_statistic, totals, qs)


def merge_cells(
    groups: np.ndarray, indexes: np.ndarray, counts: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of many sketches, in any order and a bucket possibly repeated (`groups[i]` is the
    group of cell i, in 0 … n_groups-1), as `grouped_quantiles` takes them: one group after
    another, each in ascending bucket order with a bucket once; and each group's length.

    Two stable sorts of small integers (numpy sorts those by radix), not a comparison sort."""
    # numpy's stable sort is a radix sort for 16-bit integers: bucket indexes are, groups
    # mostly can be (a month by model and hour is ~3,000)
    order = np.argsort(indexes.astype(np.int16, copy=False), kind="stable")
    by_group = groups.astype(np.uint16) if n_groups <= 1 << 16 else groups
    order = order[np.argsort(by_group[order], kind="stable")]
    groups, indexes, counts = groups[order], indexes[order], counts[order]
    starts = np.flatnonzero(
        np.concatenate(([True], (groups[1:] != groups[:-1]) | (indexes[1:] != indexes[:-1])))
    )
    summed = np.add.reduceat(counts, starts) if len(starts) else counts[:0]
    lengths = np.bincount(groups[starts], minlength=n_groups)
    return indexes[starts], summed, lengths
