"""DuckDB's rollups (per minute by the rollup keys, per hour by user): how they are computed
from spans, and how they are read.

A bucket is rolled up once its table's mark passes it (the writer advances the marks a couple of
minutes behind the clock), in one INSERT … SELECT over the spans of the buckets passed. A write
that changes a span of a bucket already rolled up (a late span, a parent arriving after its
children and lending them its tags, a duplicate found, a repricing) recomputes that bucket in
the same transaction (for user hours, only the users whose spans changed). So rollups always
equal what the spans say, and reading a range is rollups for its whole buckets before the mark
plus spans for the rest (query/py decides).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from tokentrace import sketch
from tokentrace.canonical import (
    ERROR_TYPES,
    FROM_SPANS,
    GRAINS,
    MINUTE,
    ROLLUP_COUNTS,
    SKETCHED_MEASURES,
    Grain,
)
from tokentrace.store.duckdb.dialect import DuckDBDialect
from tokentrace.store.filters import SpanFilter
from tokentrace.store.rollups import Cell, Change, first_mark, touched_buckets
from tokentrace.store.sql import LLM_CALL, names, select_groups, where_clause

_RETRY = "retry_attempt > 0"
_UNIT = {60: "minute", 3600: "hour", 86400: "day"}

#: Per span: what each rollup row sums (canonical.ROLLUP_COUNTS, in that order) and first/last
#: seen. The store's span aggregate uses the same expressions.
COUNTS = f"""
    count(*) FILTER (WHERE {LLM_CALL}) AS requests,
    count(*) AS spans,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
    coalesce(sum(cost_usd), 0)::DOUBLE AS cost_usd,
    count(*) FILTER (WHERE cost_known = false) AS unpriced_spans,
    count(*) FILTER (WHERE {_RETRY}) AS retries,
    count(*) FILTER (WHERE {_RETRY} AND NOT ({LLM_CALL})) AS http_resends,
    coalesce(sum(total_tokens) FILTER (WHERE {_RETRY}), 0)::BIGINT AS retry_tokens,
    coalesce(sum(cost_usd) FILTER (WHERE {_RETRY}), 0)::DOUBLE AS retry_cost_usd,
    count(*) FILTER (WHERE {LLM_CALL} AND finish_reason = 'length') AS truncated,
    count(*) FILTER (WHERE {LLM_CALL} AND streaming) AS streamed,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen"""
# Each bucket index listed, then counted per list: ~5x faster in DuckDB 1.x than the
# histogram() aggregate over a million groups (bench/scale.py).
_SKETCHES = "".join(
    f",\n    list({sketch.index_sql(m)}) FILTER (WHERE {LLM_CALL} AND {m} IS NOT NULL) AS {m}"
    for m in SKETCHED_MEASURES
)
_COUNTED = ", ".join(f"list_aggregate({m}, 'histogram') AS {m}" for m in SKETCHED_MEASURES)


def _bucket_of(grain: Grain, column: str = "start_time") -> str:
    return f"date_trunc('{_UNIT[grain.seconds]}', {column})::TIMESTAMP"


def _select(grain: Grain, where: str, sampled_out: bool = False) -> str:
    """The rows of `grain`'s table for the counted spans matching `where`."""
    rows = f"""
SELECT project_id, {_bucket_of(grain)} AS {grain.time_column}, {", ".join(grain.keys)},{COUNTS}
    {_SKETCHES if grain.sketched else ""}, {str(sampled_out).lower()} AS sampled_out
FROM spans
WHERE duplicate_of IS NULL AND {where}
GROUP BY ALL
"""
    return f"SELECT * REPLACE ({_COUNTED}) FROM ({rows})" if grain.sketched else rows


def _select_rolled(grain: Grain, where: str) -> str:
    """The rows of `grain`'s table summed from those of the finer table it is rolled from
    (`where` over that table's rows), sketches merged bucket by bucket. Sampled-out rows are
    summed with the rest: a trace dropped after its hour was summed leaves the hour's numbers
    as they are, so this table needs no rows of its own for it (and no freeze)."""
    source = grain.rolled_from
    assert source is not None
    columns = ["project_id", grain.time_column, *grain.keys]
    rows = (
        f"SELECT * EXCLUDE ({source.time_column}), {_bucket_of(grain, source.time_column)} AS "
        f"{grain.time_column} FROM {source.table} WHERE {where}"
    )
    summed = ", ".join(
        f"sum({c})::{'DOUBLE' if c.endswith('usd') else 'BIGINT'} AS {c}" for c in ROLLUP_COUNTS
    )
    totals = (
        f"SELECT {', '.join(columns)}, {summed}, min(first_seen) AS first_seen, "
        f"max(last_seen) AS last_seen FROM rows GROUP BY ALL"
    )
    if not grain.sketched:
        return f"WITH rows AS ({rows}) {totals}"
    # A sketch is a map bucket -> count: the finer rows' maps are listed as (group, measure,
    # bucket, count) cells, summed per bucket and put back together per group. Plain columns,
    # not one struct per group: ~15% faster.
    cells = " UNION ALL ".join(
        f"SELECT {', '.join(columns)}, '{m}' AS measure, unnest(map_keys({m})) AS i, "
        f"unnest(map_values({m})) AS n FROM rows"
        for m in SKETCHED_MEASURES
    )
    maps = ", ".join(
        f"map_from_entries(list((i, n)) FILTER (WHERE measure = '{m}')) AS {m}" for m in SKETCHED_MEASURES
    )
    same = " AND ".join(f"s.{c} IS NOT DISTINCT FROM k.{c}" for c in columns)
    return f"""
WITH rows AS ({rows}),
summed AS ({totals}),
cells AS (SELECT {", ".join(columns)}, measure, i, sum(n)::UBIGINT AS n FROM ({cells}) GROUP BY ALL),
sketches AS (SELECT {", ".join(columns)}, {maps} FROM cells GROUP BY ALL)
SELECT s.*, {", ".join(f"k.{m}" for m in SKETCHED_MEASURES)} FROM summed s LEFT JOIN sketches k ON {same}
"""


def _select_between(grain: Grain) -> str:
    """The rows of `grain`'s table for the buckets from one time to another (two parameters),
    from spans or from the finer table's rows."""
    if grain.rolled_from is None:
        return _select(grain, "start_time >= ? AND start_time < ?")
    column = grain.rolled_from.time_column
    return _select_rolled(grain, f"{column} >= ? AND {column} < ?")


def marks(cur: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """Each rollup table's mark (naive UTC): every bucket before it is rolled up."""
    return dict(cur.execute("SELECT grain, complete_until FROM rollup_marks").fetchall())


def advance(cur: duckdb.DuckDBPyConnection, until: datetime) -> dict[str, datetime]:
    """Roll up every bucket from each table's mark to `until` (naive UTC, whole minute); the new
    marks. The caller holds the transaction."""
    found = marks(cur)
    oldest = None
    if any(g.table not in found for g in FROM_SPANS):  # the first time: from the oldest span
        oldest = cur.execute("SELECT min(start_time)::TIMESTAMP FROM spans").fetchone()[0]
    for grain in GRAINS:
        target = grain.floor(until)
        mark = found.get(grain.table) or first_mark(grain, target, oldest)
        if target > mark:
            cur.execute(
                f"DELETE FROM {grain.table} WHERE {grain.time_column} >= ? AND {grain.time_column} < ? "
                "AND NOT sampled_out",
                [mark, target],
            )
            cur.execute(f"INSERT INTO {grain.table} BY NAME " + _select_between(grain), [mark, target])
            mark = target
        if mark != found.get(grain.table):  # written when it moves, not at every call
            cur.execute("INSERT OR REPLACE INTO rollup_marks VALUES (?, ?)", [grain.table, mark])
            found[grain.table] = mark
    return found


def recompute(cur: duckdb.DuckDBPyConnection, changes: Iterable[Change], found: dict[str, datetime]) -> int:
    """Roll up again the buckets the changed spans fall in, where a table's mark (`found`) has
    passed them; how many buckets. The caller holds the transaction."""
    redone = 0
    for grain, touched in touched_buckets(changes, found):
        _redo(cur, grain, touched)
        redone += len(touched)
    return redone


def freeze(cur: duckdb.DuckDBPyConnection, project_id: str, found: dict[str, datetime]) -> None:
    """Copy the numbers of the spans of the traces in `sampled_out_traces` (a registered
    relation of trace_id) into rollup rows marked sampled_out, before those spans are deleted.
    Every such span lies before every mark (the sampler judges only such traces)."""
    for grain in FROM_SPANS:
        cur.execute(
            f"INSERT INTO {grain.table} BY NAME "
            + _select(
                grain,
                "project_id = ? AND start_time < ? AND trace_id IN (SELECT trace_id FROM sampled_out_traces)",
                sampled_out=True,
            ),
            [project_id, found[grain.table]],
        )


def _redo(cur: duckdb.DuckDBPyConnection, grain: Grain, touched: list[Cell]) -> None:
    narrowed_by = grain.narrowed_by
    table = pa.table(
        {
            "project_id": [c[0] for c in touched],
            "at": [c[1] for c in touched],
            "narrow": [c[2] for c in touched],
        },
        schema=pa.schema([("project_id", pa.string()), ("at", pa.timestamp("us")), ("narrow", pa.string())]),
    )
    narrow = f" AND d.narrow IS NOT DISTINCT FROM {{t}}.{narrowed_by}" if narrowed_by else ""
    cur.register("rollup_redo", table)
    try:
        # Rows of sampled-out spans stay: those spans are gone, their numbers live only there
        # (a table summed from a finer one has none: it sums the finer one's).
        cur.execute(
            f"DELETE FROM {grain.table} r USING rollup_redo d "
            f"WHERE r.project_id = d.project_id AND r.{grain.time_column} = d.at AND NOT r.sampled_out"
            + narrow.format(t="r")
        )
        # The time bounds as literals let zone maps skip the other row groups.
        source, time = ("spans", "start_time")
        if grain.rolled_from is not None:
            source, time = grain.rolled_from.table, grain.rolled_from.time_column
        where = (
            f"{time} >= ? AND {time} < ? AND EXISTS (SELECT 1 FROM rollup_redo d "
            f"WHERE d.project_id = {source}.project_id AND d.at = {_bucket_of(grain, f'{source}.{time}')}"
            + narrow.format(t=source)
            + ")"
        )
        select = _select(grain, where) if grain.rolled_from is None else _select_rolled(grain, where)
        first, last = min(c[1] for c in touched), max(c[1] for c in touched)
        cur.execute(
            f"INSERT INTO {grain.table} BY NAME " + select, [first, last + timedelta(seconds=grain.seconds)]
        )
    finally:
        cur.unregister("rollup_redo")


def aggregate_sql(
    f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, grain: Grain
) -> tuple[str, list[Any]]:
    """The store's `aggregate` (without distinct counts) over the rows of `grain`'s table."""
    params = DuckDBDialect()
    groups = select_groups(group_by, params, bucket_seconds, grain=grain)
    where = where_clause(f, params, grain=grain)
    summed = ", ".join(
        f"coalesce(sum({c}), 0)::{'DOUBLE' if c.endswith('usd') else 'BIGINT'} AS {c}" for c in ROLLUP_COUNTS
    )
    # CASE, not FILTER: ten filtered sums cost a third of a month-by-user read (~10 ms)
    errors_by_type = ", ".join(
        f"coalesce(sum(CASE WHEN status = 'error' AND error_type = '{t}' THEN requests END), 0)::BIGINT "
        f"AS errors_{t}"
        for t in ERROR_TYPES
    )
    select = ", ".join([*groups, ""]) if groups else ""
    sql = f"""
    SELECT {select} {summed},
        NULL::BIGINT AS traces, NULL::BIGINT AS sessions, NULL::BIGINT AS users,
        coalesce(sum(requests) FILTER (WHERE status = 'error'), 0)::BIGINT AS errors,
        coalesce(sum(requests) FILTER (WHERE status <> 'error'), 0)::BIGINT AS answered,
        min(first_seen) AS first_seen, max(last_seen) AS last_seen,
        {errors_by_type}
    FROM {grain.table} WHERE {where}
    {"GROUP BY ALL" if groups else ""}
    """
    return sql, params


def sketch_sql(
    parts: Sequence[tuple[Grain | None, SpanFilter]],
    group_by: tuple[str, ...],
    measures: tuple[str, ...],
    bucket_seconds: int | None,
) -> tuple[str, list[Any]]:
    """The sketches of `measures` over LLM calls as rows of (measure, time bucket, `group_by`…,
    the lists sketch_index and count), in one query: every rollup row of a part as it is stored
    (a grain's), or spans counted per bucket (None). A group comes in as many rows as it has;
    query/ merges them in numpy, where summing and sorting the buckets costs a fraction of what
    it does in SQL (a month by model and hour: ~100 ms of list_sort(list(…)) per measure here,
    ~15 ms there)."""
    unknown = set(measures) - set(SKETCHED_MEASURES)
    if unknown or not measures:
        raise ValueError(f"no sketch of {sorted(unknown) or 'no measure'}")
    params = DuckDBDialect()  # placeholders in order: the measures' parts one after another
    return " UNION ALL ".join(
        f"SELECT '{m}' AS measure, * FROM ({_measure_sql(parts, group_by, m, bucket_seconds, params)})"
        for m in measures
    ), params


def _measure_sql(
    parts: Sequence[tuple[Grain | None, SpanFilter]],
    group_by: tuple[str, ...],
    measure: str,
    bucket_seconds: int | None,
    params: DuckDBDialect,
) -> str:
    rows = " UNION ALL ".join(
        _cells(f, grain, group_by, measure, bucket_seconds, params) for grain, f in parts
    )
    if bucket_seconds is None:
        # Without time buckets the groups are few (a model each): summing their buckets here
        # shrinks what comes back from every rollup row's to a sketch per group.
        keys = names(select_groups(group_by, DuckDBDialect(), None))
        cells = (
            f"SELECT {', '.join([*keys, 'unnest(sketch_index) AS i', 'unnest(count) AS n'])} FROM ({rows})"
        )
        summed = f"SELECT {', '.join([*keys, 'i', 'sum(n) AS n'])} FROM ({cells}) GROUP BY ALL"
        lists = "list(i)::SMALLINT[] AS sketch_index, list(n)::BIGINT[] AS count"
        rows = f"SELECT {', '.join([*keys, lists])} FROM ({summed}) {'GROUP BY ALL' if keys else ''}"
    return rows


def _cells(
    f: SpanFilter,
    grain: Grain | None,
    group_by: tuple[str, ...],
    measure: str,
    bucket_seconds: int | None,
    params: DuckDBDialect,
) -> str:
    """(groups…, sketch_index, count) rows of one part: a rollup table's sketches as lists, or
    spans counted per bucket (the rollups' limits apply to both)."""
    lists = f"map_keys({measure})::SMALLINT[] AS sketch_index, map_values({measure})::BIGINT[] AS count"
    if grain is not None:
        if not grain.sketched:
            raise ValueError(f"{grain.table} keeps no sketches")
        groups = select_groups(group_by, params, bucket_seconds, grain=grain)
        where = where_clause(f, params, grain=grain)
        return (
            f"SELECT {', '.join([*groups, lists])} FROM {grain.table} WHERE {where} AND {measure} IS NOT NULL"
        )
    where = where_clause(f, params)
    groups = select_groups(
        group_by, params, bucket_seconds, grain=MINUTE, time_column="start_time::TIMESTAMP"
    )
    keys = names(groups)
    select = ", ".join([*groups, f"{sketch.index_sql(measure)} AS sketch_index", "count(*) AS n"])
    counted = (
        f"SELECT {select} FROM spans WHERE {where} AND {LLM_CALL} AND duplicate_of IS NULL "
        f"AND {measure} IS NOT NULL GROUP BY ALL"
    )
    return (
        f"SELECT {', '.join([*keys, 'list(sketch_index) AS sketch_index', 'list(n)::BIGINT[] AS count'])} "
        f"FROM ({counted}) {'GROUP BY ALL' if keys else ''}"
    )


class DuckDBRollups:
    """Rollups: advance the marks, say how far they reach."""

    def advance_rollups(self, until: datetime) -> datetime:
        until = until.astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
        with self._lock:  # the marks change with the commit, before another write reads them
            with self._transaction() as cur:
                found = advance(cur, until)
            self._marks = found
        return found[MINUTE.table].replace(tzinfo=UTC)

    def rolled_up_until(self, grain: Grain = MINUTE) -> datetime | None:
        mark = self._marks.get(grain.table)
        return mark.replace(tzinfo=UTC) if mark is not None else None
