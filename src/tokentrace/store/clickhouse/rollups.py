"""ClickHouse's rollups (the DuckDB store's, store/duckdb/rollups.py, without transactions).

A bucket is never deleted and rewritten: rolling it up (again) inserts its rows with a higher
`version`, and a read takes each bucket's newest version (for user hours, each user's), plus
every sampled-out row. One INSERT is atomic, so a crash between statements leaves the previous
rows in force: never none, never both. `compact` deletes superseded versions.

Tail sampling (store/clickhouse/sampling.py) writes its rows under its sweep's id: they count
only once the sweep commits (`VALID`), and until its sampled-out spans are deleted every other
roll-up leaves those spans out (`UNSETTLED`), so they are never counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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
from tokentrace.store.clickhouse.dialect import ClickHouseDialect, whole_seconds
from tokentrace.store.clickhouse.transport import Transport
from tokentrace.store.filters import SpanFilter
from tokentrace.store.python_rows import python_rows
from tokentrace.store.rollups import Cell, Change, first_mark, touched_buckets
from tokentrace.store.sql import LLM_CALL, group_clause, names, select_groups, where_clause

_RETRY = "retry_attempt > 0"
_UNIT = {60: "toStartOfMinute", 3600: "toStartOfHour", 86400: "toStartOfDay"}
_NO_USER = "\x00"  # a cell's NULL narrowing key, as text
_MOST_CELLS = 5000  # buckets a recompute names; more: their whole time range

#: Per span: what each rollup row sums (canonical.ROLLUP_COUNTS, in that order) and first/last
#: seen. The store's span aggregate uses the same expressions.
COUNTS = f"""
    countIf({LLM_CALL}) AS requests,
    count() AS spans,
    toInt64(sum(coalesce(input_tokens, 0))) AS input_tokens,
    toInt64(sum(coalesce(output_tokens, 0))) AS output_tokens,
    toInt64(sum(coalesce(total_tokens, 0))) AS total_tokens,
    toInt64(sum(coalesce(cache_read_tokens, 0))) AS cache_read_tokens,
    toInt64(sum(coalesce(cache_write_tokens, 0))) AS cache_write_tokens,
    toInt64(sum(coalesce(reasoning_tokens, 0))) AS reasoning_tokens,
    toFloat64(sum(coalesce(cost_usd, 0))) AS cost_usd,
    countIf(cost_known = false) AS unpriced_spans,
    countIf({_RETRY}) AS retries,
    countIf({_RETRY} AND NOT ({LLM_CALL})) AS http_resends,
    toInt64(sumIf(coalesce(total_tokens, 0), {_RETRY})) AS retry_tokens,
    toFloat64(sumIf(coalesce(cost_usd, 0), {_RETRY})) AS retry_cost_usd,
    countIf({LLM_CALL} AND finish_reason = 'length') AS truncated,
    countIf({LLM_CALL} AND streaming) AS streamed,
    minOrNull(start_time) AS first_seen,
    maxOrNull(start_time) AS last_seen"""
# ClickHouse lets an alias shadow a column anywhere in its query; with this a name means the
# column, and NULL matches NULL in IN (a cell's NULL user).
SETTINGS = "SETTINGS prefer_column_name_to_alias = 1, transform_null_in = 1"

#: Rows that count: those no sweep wrote, and those of sweeps that committed.
VALID = (
    "(sweep = 0 OR sweep IN (SELECT sweep FROM sampling_sweeps FINAL WHERE state IN ('committed', 'done')))"
)
#: Traces a sweep has dropped whose spans are not deleted yet: their numbers are (or are being)
#: frozen into sampled-out rows, so no other roll-up counts them.
UNSETTLED = (
    "SELECT trace_id FROM sampling_pending WHERE sweep IN "
    "(SELECT sweep FROM sampling_sweeps FINAL WHERE state IN ('open', 'committed'))"
)
#: Traces of committed sweeps whose spans are not deleted yet: their LLM calls count from
#: sampled_calls, where the sweep copied them, not from their spans.
COMMITTED = (
    "SELECT trace_id FROM sampling_pending WHERE sweep IN "
    "(SELECT sweep FROM sampling_sweeps FINAL WHERE state = 'committed')"
)


def _source_time(grain: Grain) -> str:
    """The column `grain`'s rows are bucketed by: the spans' start, or the finer table's bucket."""
    return "start_time" if grain.rolled_from is None else grain.rolled_from.time_column


def _bucket_of(grain: Grain) -> str:
    return f"{_UNIT[grain.seconds]}({_source_time(grain)})"


def _between(grain: Grain) -> str:
    """The rows `grain`'s buckets from {lo} to {hi} are made of."""
    time = _source_time(grain)
    return f"{time} >= {{lo:DateTime64(9, 'UTC')}} AND {time} < {{hi:DateTime64(9, 'UTC')}}"


def _columns(grain: Grain) -> str:
    """The columns an INSERT of `grain`'s rows writes, in the order its SELECTs give them."""
    sketches = SKETCHED_MEASURES if grain.sketched else ()
    columns = ["project_id", grain.time_column, *grain.keys, *ROLLUP_COUNTS, "first_seen", "last_seen"]
    return ", ".join([*columns, *sketches, "sampled_out", "version", "sweep"])


def _insert(grain: Grain, where: str, version: int, sampled_out: bool = False, sweep: int = 0) -> str:
    """INSERT of `grain`'s rows for the counted spans matching `where` (for rows not sampled
    out, without the spans of unsettled sweeps)."""
    counted = "map(assumeNotNull({index}), toUInt64(1))"
    sketches = "".join(
        f",\n    sumMapIf({counted.format(index=sketch.index_sql(m))}, {LLM_CALL} AND {m} IS NOT NULL) AS {m}"
        for m in SKETCHED_MEASURES
        if grain.sketched
    )
    keys = ", ".join(grain.keys)
    if not sampled_out:
        where = f"{where} AND trace_id NOT IN ({UNSETTLED})"
    return f"""
INSERT INTO {grain.table} ({_columns(grain)})
SELECT project_id, {_bucket_of(grain)} AS {grain.time_column}, {keys},{COUNTS}{sketches},
    {str(sampled_out).lower()} AS sampled_out, toUInt64({int(version)}) AS version,
    toUInt64({int(sweep)}) AS sweep
FROM spans FINAL
WHERE duplicate_of IS NULL AND {where}
GROUP BY project_id, {grain.time_column}, {keys}
{SETTINGS}
"""


def _insert_rolled(grain: Grain, where: str, version: int, sweep: int = 0) -> str:
    """INSERT of `grain`'s rows summed from the newest valid rows of the finer table it is rolled
    from (`where` over that table's rows). Sampled-out rows are summed with the rest: a trace
    dropped after its hour was summed leaves the hour's numbers as they are (no freeze here)."""
    source = grain.rolled_from
    assert source is not None
    sketches = [m for m in SKETCHED_MEASURES if grain.sketched]
    keys = ", ".join(grain.keys)
    summed = [f"sum({c})" for c in ROLLUP_COUNTS] + ["min(first_seen)", "max(last_seen)"]
    summed += [f"sumMap({m})" for m in sketches]
    return f"""
INSERT INTO {grain.table} ({_columns(grain)})
SELECT project_id, {_bucket_of(grain)} AS {grain.time_column}, {keys},
    {", ".join(summed)}, false, toUInt64({int(version)}), toUInt64({int(sweep)})
FROM {source.table}
WHERE spans > 0 AND {where} AND {newest(source, where)}
GROUP BY project_id, {grain.time_column}, {keys}
{SETTINGS}
"""


def server_clock(ch: Transport) -> int:
    """A new version: ClickHouse's clock in ns, one clock for every ingest node, so a bucket
    rolled up after another node's roll-up of it is newer whatever the nodes' clocks say."""
    return ch.query("SELECT toUnixTimestamp64Nano(now64(9)) AS v")["v"][0].as_py()


def marks(ch: Transport) -> dict[str, datetime]:
    """Each rollup table's mark (naive UTC): the furthest any node has written."""
    # DateTime comes back from chDB's Arrow output as epoch seconds: ask for them plainly
    rows = python_rows(
        ch.query("SELECT grain, toUnixTimestamp(max(complete_until)) AS at FROM rollup_marks GROUP BY grain")
    )
    return {r["grain"]: datetime.fromtimestamp(r["at"], UTC).replace(tzinfo=None) for r in rows}


def advance(ch: Transport, until: datetime) -> dict[str, datetime]:
    """Roll up every bucket from each table's mark to `until` (naive UTC, whole minute); the
    new marks. Safe to run again after a crash: the buckets are inserted again, newer."""
    found = marks(ch)
    oldest = None
    if any(g.table not in found for g in FROM_SPANS):  # the first time: from the oldest span
        row = python_rows(ch.query("SELECT count() AS n, min(start_time) AS oldest FROM spans"))[0]
        oldest = row["oldest"].replace(tzinfo=None) if row["n"] else None
    for grain in GRAINS:
        target = grain.floor(until)
        mark = found.get(grain.table) or first_mark(grain, target, oldest)
        if target > mark:
            where = _between(grain)
            insert = _insert if grain.rolled_from is None else _insert_rolled
            ch.command(
                insert(grain, where, server_clock(ch)),
                {"lo": whole_seconds(mark), "hi": whole_seconds(target)},
            )
            mark = target
        if mark != found.get(grain.table):  # written when it moves, not at every call
            ch.command(
                "INSERT INTO rollup_marks VALUES ({g:String}, {m:DateTime('UTC')}, {v:UInt64})",
                {"g": grain.table, "m": whole_seconds(mark), "v": time.time_ns()},
            )
            found[grain.table] = mark
    return found


def recompute(ch: Transport, changes: Iterable[Change], found: dict[str, datetime], sweep: int = 0) -> int:
    """Roll up again the buckets the changed spans fall in, where a table's mark has passed
    them (a newer version of each, under `sweep` when a sweep does it); how many buckets."""
    redone = 0
    for grain, touched in touched_buckets(changes, found):
        where = _between(grain)
        first, last = min(c[1] for c in touched), max(c[1] for c in touched)
        params: dict[str, Any] = {
            "lo": whole_seconds(first),
            "hi": whole_seconds(last + timedelta(seconds=grain.seconds)),
        }
        # Past a few thousand buckets (a sweep's), the whole range, every bucket in it rolled up
        # again: the buckets as a parameter would make a query of megabytes.
        if len(touched) <= _MOST_CELLS:
            where += f" AND has({{cells:Array(String)}}, {_cell_sql(grain, _bucket_of(grain))})"
            params["cells"] = [_cell_text(c, grain) for c in touched]
        version = server_clock(ch)
        # A bucket left with no spans (its only span moved to another user, say) inserts no
        # rows; a row of zeros in its version says it is empty now.
        ch.insert(grain.table, _empty_rows(grain, touched, version, sweep))
        insert = _insert if grain.rolled_from is None else _insert_rolled
        ch.command(insert(grain, where, version, sweep=sweep), params)
        redone += len(touched)
    return redone


def _empty_rows(grain: Grain, touched: list[Cell], version: int, sweep: int) -> pa.Table:
    """One row of zeros per bucket (spans = 0: reads skip it), in the bucket's new version."""
    columns = {
        "project_id": pa.array([c[0] for c in touched], pa.string()),
        grain.time_column: pa.array([c[1] for c in touched], pa.timestamp("s", tz="UTC")),
        "version": pa.array([version] * len(touched), pa.uint64()),
        "sweep": pa.array([sweep] * len(touched), pa.uint64()),
    }
    if grain.narrowed_by:
        columns[grain.narrowed_by] = pa.array([c[2] for c in touched], pa.string())
    return pa.table(columns)


def _cell_sql(grain: Grain, bucket: str) -> str:
    """A span's cell of `grain` as text, matching _cell_text."""
    parts = [f"project_id, '|', toString(toDateTime({bucket}, 'UTC'))"]
    if grain.narrowed_by:
        parts.append(f"'|', ifNull({grain.narrowed_by}, '{_NO_USER}')")
    return f"concat({', '.join(parts)})"


def _cell_text(cell: Cell, grain: Grain) -> str:
    project, at, narrow = cell
    text = f"{project}|{at:%Y-%m-%d %H:%M:%S}"
    if grain.narrowed_by:
        text += f"|{_NO_USER if narrow is None else narrow}"
    return text


def freeze(ch: Transport, project_id: str, found: dict[str, datetime], sweep: int) -> None:
    """Copy the numbers of the spans of the traces `sweep` dropped (sampling_pending) into
    rollup rows marked sampled_out, under the sweep's id, before those spans are deleted.
    Every such span lies before every mark (the sampler judges only such traces)."""
    where = (
        "project_id = {project:String} AND start_time < {mark:DateTime64(9, 'UTC')} "
        "AND trace_id IN (SELECT trace_id FROM sampling_pending WHERE sweep = {sweep:UInt64})"
    )
    for grain in FROM_SPANS:
        ch.command(
            _insert(grain, where, server_clock(ch), sampled_out=True, sweep=sweep),
            {"project": project_id, "mark": whole_seconds(found[grain.table]), "sweep": sweep},
        )


def compact(ch: Transport, before: int) -> None:
    """Delete the rows no read counts any more, written before version `before`: versions of a
    bucket older than its newest valid one, and the rows of abandoned sweeps."""
    for grain in GRAINS:
        cell = _cell_columns(grain)
        ch.command(
            f"DELETE FROM {grain.table} WHERE version < {{before:UInt64}} AND ("
            "sweep IN (SELECT sweep FROM sampling_sweeps FINAL WHERE state = 'abandoned') "
            f"OR (NOT sampled_out AND {VALID} AND ({cell}, version) NOT IN (SELECT {cell}, max(version) "
            f"FROM {grain.table} WHERE NOT sampled_out AND {VALID} GROUP BY {cell})))",
            {"before": before},
        )


def _cell_columns(grain: Grain) -> str:
    """A row's bucket as a tuple's items, without NULLs (IN in a DELETE does not match NULLs)."""
    narrow = [f"ifNull({grain.narrowed_by}, '{_NO_USER}')"] if grain.narrowed_by else []
    return ", ".join(["project_id", grain.time_column, *narrow])


def newest(grain: Grain, where: str) -> str:
    """The condition that keeps each bucket's newest valid version and every valid sampled-out row."""
    cell = _cell_columns(grain)
    return (
        f"({VALID} AND (sampled_out OR ({cell}, version) IN (SELECT {cell}, max(version) "
        f"FROM {grain.table} WHERE {where} AND NOT sampled_out AND {VALID} GROUP BY {cell})))"
    )


def _newest_where(f: SpanFilter, grain: Grain, params: ClickHouseDialect) -> str:
    """The filter over `grain`'s table, kept to each cell's newest rows (see `newest`)."""
    times = where_clause(f, params, grain=grain, times_only=True)
    return f"{where_clause(f, params, grain=grain)} AND {newest(grain, times)}"


def aggregate_sql(
    f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, grain: Grain
) -> tuple[str, dict[str, Any]]:
    """The store's `aggregate` (without distinct counts) over the newest rows of `grain`'s table."""
    params = ClickHouseDialect()
    groups = select_groups(group_by, params, bucket_seconds, grain=grain)
    where = _newest_where(f, grain, params)
    summed = ", ".join(
        f"{'toFloat64' if c.endswith('usd') else 'toInt64'}(sum({c})) AS {c}" for c in ROLLUP_COUNTS
    )
    errors_by_type = ", ".join(
        f"toInt64(sumIf(requests, status = 'error' AND error_type = '{t}')) AS errors_{t}"
        for t in ERROR_TYPES
    )
    select = ", ".join([*groups, ""]) if groups else ""
    sql = f"""
    SELECT * FROM (SELECT {select} {summed},
        CAST(NULL AS Nullable(UInt64)) AS traces, CAST(NULL AS Nullable(UInt64)) AS sessions,
        CAST(NULL AS Nullable(UInt64)) AS users,
        toInt64(sumIf(requests, status = 'error')) AS errors,
        toInt64(sumIf(requests, status != 'error')) AS answered,
        minIfOrNull(first_seen, spans > 0) AS first_seen, maxIfOrNull(last_seen, spans > 0) AS last_seen,
        {errors_by_type}
    FROM {grain.table} WHERE {where}
    {group_clause(groups)} {"HAVING sum(spans) > 0" if groups else ""})
    {SETTINGS}
    """
    return sql, params


def sketch_sql(
    parts: Sequence[tuple[Grain | None, SpanFilter]],
    group_by: tuple[str, ...],
    measures: tuple[str, ...],
    bucket_seconds: int | None,
) -> tuple[str, dict[str, Any]]:
    """Per measure and group (time bucket and `group_by`) the sketch of each of `measures` over
    LLM calls, as two arrays in bucket order (sketch_index, count): the cells of every part (the
    newest rows of a grain's rollups, or spans where it is None) summed bucket by bucket, all in
    one query."""
    unknown = set(measures) - set(SKETCHED_MEASURES)
    if unknown or not measures:
        raise ValueError(f"no sketch of {sorted(unknown) or 'no measure'}")
    params = ClickHouseDialect()
    sql = " UNION ALL ".join(
        f"SELECT '{m}' AS measure, * FROM ({_measure_sql(parts, group_by, m, bucket_seconds, params)})"
        for m in measures
    )
    return f"{sql} {SETTINGS}", params


def _measure_sql(
    parts: Sequence[tuple[Grain | None, SpanFilter]],
    group_by: tuple[str, ...],
    measure: str,
    bucket_seconds: int | None,
    params: ClickHouseDialect,
) -> str:
    cells = " UNION ALL ".join(
        _cells(f, grain, group_by, measure, bucket_seconds, params) for grain, f in parts
    )
    keys = names(select_groups(group_by, ClickHouseDialect(), bucket_seconds))
    summed = ", ".join([*keys, "sketch_index", "toInt64(sum(n)) AS n"])
    ordered = "arraySort(groupArray((sketch_index, n)))"
    listed = ", ".join(
        [*keys, f"arrayMap(c -> c.1, {ordered}) AS sketch_index", f"arrayMap(c -> c.2, {ordered}) AS count"]
    )
    per_cell = ", ".join([*keys, "sketch_index"])
    per_group = f"GROUP BY {', '.join(keys)}" if keys else ""
    return f"SELECT {listed} FROM (SELECT {summed} FROM ({cells}) GROUP BY {per_cell}) {per_group}"


def _cells(
    f: SpanFilter,
    grain: Grain | None,
    group_by: tuple[str, ...],
    measure: str,
    bucket_seconds: int | None,
    params: ClickHouseDialect,
) -> str:
    """(groups…, sketch_index, n) of one part: the newest rows' sketches of a rollup table as
    cells, or spans counted per bucket (the rollups' limits apply to both)."""
    if grain is not None:
        if not grain.sketched:
            raise ValueError(f"{grain.table} keeps no sketches")
        groups = select_groups(group_by, params, bucket_seconds, grain=grain)
        where = _newest_where(f, grain, params)
        select = ", ".join([*groups, "sketch_index", "toInt64(n) AS n"])
        return (
            f"SELECT {select} FROM {grain.table} "
            f"ARRAY JOIN mapKeys({measure}) AS sketch_index, mapValues({measure}) AS n WHERE {where}"
        )
    where = where_clause(f, params)
    groups = select_groups(group_by, params, bucket_seconds, grain=MINUTE, time_column="start_time")
    select = ", ".join([*groups, f"{sketch.index_sql(measure)} AS sketch_index", "toInt64(count()) AS n"])
    keys = [*names(groups), "sketch_index"]
    return (
        f"SELECT {select} FROM spans FINAL WHERE {where} AND {LLM_CALL} AND duplicate_of IS NULL "
        f"AND {measure} IS NOT NULL GROUP BY {', '.join(keys)}"
    )


class ClickHouseRollups:
    """Rollups: advance the marks, recompute what late writes touched."""

    def _recompute_late(self, written: list[tuple[pa.Table, bool]]) -> None:
        """Roll up again the buckets already rolled up that new or revised spans fall in (and,
        for spans whose tags changed, their tag-less selves' buckets)."""
        found = self._marks_for_writes()
        if not found:
            return
        mark = pa.scalar(max(found.values()), pa.timestamp("ns"))
        changes = []
        for table, tags_changed in written:
            starts = table["start_time"].cast(pa.timestamp("ns"))
            late = table.filter(pc.less(starts, mark)).select(["project_id", "start_time", "user_id"])
            changes += [
                Change(r["project_id"], r["start_time"], r["user_id"], tags_changed)
                for r in python_rows(late)
            ]
        if changes:
            recompute(self._ch, changes, found)

    def _marks_for_writes(self) -> dict[str, datetime]:
        """The marks a write's late spans are measured against, read after the spans are in:
        other ingest nodes advance them too. Also this node's own next advance (as far behind
        the clock as its last one): a node whose roll-up read the spans just before this write
        may not have written its mark yet, and this node rolls the bucket up again after it."""
        self._marks = found = marks(self._ch)
        if self._lag is None:
            return found
        horizon = datetime.now(UTC).replace(tzinfo=None) - self._lag
        return {g.table: max(found.get(g.table, datetime.min), g.floor(horizon)) for g in GRAINS}

    def advance_rollups(self, until: datetime) -> datetime:
        self._lag = datetime.now(UTC) - until  # before flooring: the writer's lag itself
        until = until.astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
        self._marks = advance(self._ch, until)
        return self._marks[MINUTE.table].replace(tzinfo=UTC)

    def rolled_up_until(self, grain: Grain = MINUTE) -> datetime | None:
        mark = self._marks.get(grain.table)
        return mark.replace(tzinfo=UTC) if mark is not None else None
