"""DuckDB's per-minute rollups: how they are computed from spans, and how they are read.

A minute is rolled up once it is `complete_until` behind (the writer advances that mark a couple
of minutes behind the clock), in one INSERT … SELECT over the spans of the minutes passed. A write
that changes a span of a minute already rolled up (a late span, a parent arriving after its
children and lending them its tags, a duplicate found, a repricing) recomputes that minute in
the same transaction. So rollups always equal what the spans say, and reading a range is rollups
for its whole minutes before the mark plus spans for the rest (query/rollups.py decides).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from tokentrace import sketch
from tokentrace.canonical import (
    ERROR_TYPES,
    LLM_OPERATIONS,
    ROLLUP_COUNTS,
    ROLLUP_KEYS,
    SKETCHED_MEASURES,
)
from tokentrace.store.base import SpanFilter

_LLM = "operation IN (" + ", ".join(f"'{op}'" for op in LLM_OPERATIONS) + ")"
_KEYS = ", ".join(ROLLUP_KEYS)
_RETRY = "retry_attempt > 0"

_ROLLUP_SELECT = f"""
SELECT project_id, date_trunc('minute', start_time)::TIMESTAMP AS minute, {_KEYS},
    count(*) FILTER (WHERE {_LLM}) AS requests,
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
    count(*) FILTER (WHERE {_RETRY} AND NOT ({_LLM})) AS http_resends,
    coalesce(sum(total_tokens) FILTER (WHERE {_RETRY}), 0)::BIGINT AS retry_tokens,
    coalesce(sum(cost_usd) FILTER (WHERE {_RETRY}), 0)::DOUBLE AS retry_cost_usd,
    count(*) FILTER (WHERE {_LLM} AND finish_reason = 'length') AS truncated,
    count(*) FILTER (WHERE {_LLM} AND streaming) AS streamed,
    min(start_time) AS first_seen,
    max(start_time) AS last_seen,
    {
    ", ".join(
        f"histogram({sketch.index_sql(m)}) FILTER (WHERE {_LLM} AND {m} IS NOT NULL) AS {m}"
        for m in SKETCHED_MEASURES
    )
}
FROM spans
WHERE duplicate_of IS NULL AND {{where}}
GROUP BY ALL
"""


def complete_until(cur: duckdb.DuckDBPyConnection) -> datetime | None:
    row = cur.execute("SELECT complete_until FROM rollup_state WHERE id = 1").fetchone()
    return row[0] if row else None


def advance(cur: duckdb.DuckDBPyConnection, until: datetime) -> datetime:
    """Roll up every minute from the mark to `until` (naive UTC, whole minute); the new mark.
    The caller holds the transaction."""
    mark = complete_until(cur)
    if mark is None:  # the first time: from the oldest span
        oldest = cur.execute("SELECT min(start_time)::TIMESTAMP FROM spans").fetchone()[0]
        mark = min(oldest.replace(second=0, microsecond=0), until) if oldest else until
    if until > mark:
        cur.execute("DELETE FROM rollup_minute WHERE minute >= ? AND minute < ?", [mark, until])
        cur.execute(
            "INSERT INTO rollup_minute " + _ROLLUP_SELECT.format(where="start_time >= ? AND start_time < ?"),
            [mark, until],
        )
        mark = until
    cur.execute("INSERT OR REPLACE INTO rollup_state VALUES (1, ?)", [mark])
    return mark


def recompute(cur: duckdb.DuckDBPyConnection, minutes: Iterable[tuple[str, datetime]]) -> int:
    """Roll up again the (project, minute) pairs given (naive UTC, whole minutes). The caller
    holds the transaction."""
    pairs = sorted(set(minutes))
    if not pairs:
        return 0
    table = pa.table(
        {"project_id": [p for p, _ in pairs], "minute": [m for _, m in pairs]},
        schema=pa.schema([("project_id", pa.string()), ("minute", pa.timestamp("us"))]),
    )
    cur.register("rollup_redo", table)
    try:
        cur.execute(
            "DELETE FROM rollup_minute r USING rollup_redo d "
            "WHERE r.project_id = d.project_id AND r.minute = d.minute"
        )
        # The time bounds as literals let zone maps skip the other row groups.
        where = (
            "start_time >= ? AND start_time < ? "
            "AND (project_id, date_trunc('minute', start_time)::TIMESTAMP) "
            "IN (SELECT (project_id, minute) FROM rollup_redo)"
        )
        first, last = min(m for _, m in pairs), max(m for _, m in pairs)
        cur.execute(
            "INSERT INTO rollup_minute " + _ROLLUP_SELECT.format(where=where),
            [first, last + timedelta(minutes=1)],
        )
    finally:
        cur.unregister("rollup_redo")
    return len(pairs)


def minutes_of(rows: Iterable[tuple[str, datetime]], before: datetime | None) -> set[tuple[str, datetime]]:
    """The (project, minute) of (project, start_time) rows that fall before the mark."""
    if before is None:
        return set()
    out = set()
    for project_id, start in rows:
        minute = start.replace(second=0, microsecond=0, tzinfo=None)
        if minute < before:
            out.add((project_id, minute))
    return out


def _where(f: SpanFilter, keys: Iterable[str]) -> tuple[str, list[Any]]:
    clauses, params = ["project_id = ?"], [f.project_id]
    if f.since is not None:
        clauses.append("minute >= ?")
        params.append(_utc(f.since))
    if f.until is not None:
        clauses.append("minute < ?")
        params.append(_utc(f.until))
    allowed = set(keys)
    for name, value in f.equals.items():
        if name not in allowed:
            raise ValueError(f"rollups are not kept by {name!r}")
        if value is None:
            clauses.append(f"{name} IS NULL")
        else:
            clauses.append(f"{name} = ?")
            params.append(value)
    if f.name_contains:
        raise ValueError("rollups are not kept by span name")
    return " AND ".join(clauses), params


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _groups(group_by: tuple[str, ...], bucket_seconds: int | None, time_column: str) -> list[str]:
    for g in group_by:
        if g not in ROLLUP_KEYS:
            raise ValueError(f"rollups are not kept by {g!r}")
    groups = list(group_by)
    if bucket_seconds is not None:
        if bucket_seconds % 60:
            raise ValueError("rollup time buckets are whole minutes")
        groups.insert(0, f"time_bucket(INTERVAL '{int(bucket_seconds)} seconds', {time_column}) AS bucket")
    return groups


def aggregate_sql(
    f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None
) -> tuple[str, list[Any]]:
    """The store's `aggregate` (without distinct counts) over rollup rows."""
    groups = _groups(group_by, bucket_seconds, "minute")
    where, params = _where(f, ROLLUP_KEYS)
    summed = ", ".join(
        f"coalesce(sum({c}), 0)::{'DOUBLE' if c.endswith('usd') else 'BIGINT'} AS {c}" for c in ROLLUP_COUNTS
    )
    errors_by_type = ", ".join(
        f"coalesce(sum(requests) FILTER (WHERE status = 'error' AND error_type = '{t}'), 0)::BIGINT "
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
    FROM rollup_minute WHERE {where}
    {"GROUP BY ALL" if groups else ""}
    """
    return sql, params


def sketch_sql(
    f: SpanFilter,
    group_by: tuple[str, ...],
    measure: str,
    bucket_seconds: int | None,
    from_rollups: bool,
    spans_where: tuple[str, list[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """(groups…, sketch_index, count) of `measure` over LLM calls: merged from rollups, or
    computed from spans (`spans_where` is the spans filter) with the same buckets."""
    if measure not in SKETCHED_MEASURES:
        raise ValueError(f"no sketch of {measure!r}")
    if from_rollups:
        groups = _groups(group_by, bucket_seconds, "minute")
        where, params = _where(f, ROLLUP_KEYS)
        inner = ", ".join(
            [*groups, f"unnest(map_keys({measure})) AS sketch_index", f"unnest(map_values({measure})) AS n"]
        )
        sql = (
            f"SELECT * EXCLUDE (n), sum(n)::BIGINT AS count FROM (SELECT {inner} FROM rollup_minute "
            f"WHERE {where} AND {measure} IS NOT NULL) GROUP BY ALL"
        )
        return sql, params
    assert spans_where is not None
    groups = _groups(group_by, bucket_seconds, "start_time::TIMESTAMP")
    where, params = spans_where
    select = ", ".join([*groups, f"{sketch.index_sql(measure)} AS sketch_index", "count(*) AS count"])
    sql = (
        f"SELECT {select} FROM spans WHERE {where} AND {_LLM} AND duplicate_of IS NULL "
        f"AND {measure} IS NOT NULL GROUP BY ALL"
    )
    return sql, params
