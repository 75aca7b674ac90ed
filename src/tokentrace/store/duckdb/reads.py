"""Reads from DuckDB: span lists, traces, sessions, scores, and the aggregates, quantiles,
sketches and histograms query/ builds its answers from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from tokentrace.canonical import (
    ERROR_TYPES,
    FIELD_NAMES,
    MINUTE,
    SAMPLED_CALL_FIELDS,
    SCORE_FIELD_NAMES,
    Grain,
)
from tokentrace.store.duckdb import rollups, trace_list
from tokentrace.store.duckdb.connection import SPAN_COLUMNS
from tokentrace.store.duckdb.dialect import DuckDBDialect
from tokentrace.store.filters import SpanFilter
from tokentrace.store.sql import LLM_CALL, LLM_OPERATIONS_SQL, allowed_column, select_groups, where_clause

_MEASURES = frozenset({"duration_ms", "ttft_ms", "tpot_ms"})


_HISTOGRAM_MEASURES = _MEASURES | {"input_tokens", "output_tokens"}


class DuckDBReads:
    """SpanReader over the spans table (and the rollups, for rollup_aggregate and sketch)."""

    def spans(self, f: SpanFilter, columns: tuple[str, ...], limit: int | None = None) -> pa.Table:
        cols = ", ".join(allowed_column(c, FIELD_NAMES) for c in columns)
        params = DuckDBDialect()
        where = where_clause(f, params)
        sql = f"SELECT {cols} FROM spans WHERE {where} ORDER BY start_time"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._arrow(sql, params)

    def llm_calls(self, f: SpanFilter, columns: tuple[str, ...]) -> pa.Table:
        cols = ", ".join(allowed_column(c, SAMPLED_CALL_FIELDS) for c in columns)
        params = DuckDBDialect()  # positional: each WHERE adds its own
        stored = where_clause(f, params)
        dropped = where_clause(f, params)
        return self._arrow(
            f"SELECT {cols}, false AS sampled_out, hash(trace_id) AS trace_key FROM spans "
            f"WHERE {stored} AND {LLM_CALL} AND duplicate_of IS NULL "
            f"UNION ALL SELECT {cols}, true, hash(trace_id) FROM sampled_calls WHERE {dropped}",
            params,
        )

    def trace_spans(self, project_id: str, trace_id: str) -> pa.Table:
        # The trace's hours first (trace_hours), then its spans among those hours only: the
        # start time's zone maps skip the rest of the table.
        with self._conn.cursor() as cur:
            hours = trace_list.hours_of(cur, project_id, [trace_id])
        if not hours:
            return self._arrow(f"SELECT {SPAN_COLUMNS} FROM spans LIMIT 0", [])
        within, bounds = trace_list.within_hours(hours, [trace_id])
        return self._arrow(
            f"SELECT {SPAN_COLUMNS} FROM spans s WHERE trace_id = ? AND project_id = ? AND {within} "
            "ORDER BY start_time, span_id",
            [trace_id, project_id, *bounds],
        )

    def content(self, project_id: str, trace_id: str, span_id: str) -> dict[str, Any] | None:
        with self._conn.cursor() as cur:
            row = cur.execute(
                "SELECT system_instructions, input_messages, output_messages, events FROM content "
                "WHERE content_key = md5_number(? || ':' || ? || ?)",
                [project_id, trace_id, span_id],
            ).fetchone()
        if row is None:
            return None
        names = ("system_instructions", "input_messages", "output_messages", "events")
        return {name: orjson.loads(value) if value else None for name, value in zip(names, row, strict=True)}

    def session_summaries(self, f: SpanFilter, limit: int, offset: int) -> pa.Table:
        with self._conn.cursor() as cur:
            cur.begin()  # one snapshot for the page and its sums
            try:
                chosen = self._recent_sessions(cur, f, limit + offset)[offset:]
                return self._session_sums(cur, f.project_id, chosen)
            finally:
                cur.rollback()  # only read

    def _recent_sessions(self, cur: duckdb.DuckDBPyConnection, f: SpanFilter, count: int) -> list[tuple]:
        """The `count` sessions most recently active in the filter (session_id, last_active):
        looked for among the spans ending in the range's last hours first (trace_list.windows).
        A session active since a window's start has a span ending in it, and its spans ending
        before cannot be its latest: the window's first `count` are the whole range's."""
        params = DuckDBDialect()
        where = where_clause(f, params)
        select = (
            f"SELECT session_id, epoch_ns(max(end_time)) AS last_active FROM spans WHERE {where} "
            "AND session_id IS NOT NULL {within} GROUP BY session_id "
            f"ORDER BY last_active DESC, session_id LIMIT {int(count)}"
        )
        looks = trace_list.windows(cur, f)
        for window in looks.windows if looks else []:
            found = cur.execute(select.format(within="AND end_time >= ?"), [*params, window]).fetchall()
            if len(found) == count:
                return found
        return cur.execute(select.format(within=""), params).fetchall()

    def _session_sums(self, cur: duckdb.DuckDBPyConnection, project_id: str, chosen: list[tuple]) -> pa.Table:
        """Each chosen session summed whole, most recently active first."""
        counted = "s.duplicate_of IS NULL"
        session_ids = [row[0] for row in chosen]
        # Among the sessions' hours only: a scan of every stored span's session_id otherwise
        within, within_params = trace_list.within_hours(
            trace_list.hours_of(cur, project_id, session_ids, of="session"), session_ids
        )
        sql = f"""
        WITH chosen AS (SELECT unnest(?::VARCHAR[]) AS session_id, unnest(?::BIGINT[]) AS last_active)
        SELECT s.session_id,
            count(DISTINCT s.trace_id) AS traces,
            count(*) FILTER (WHERE s.operation IN {LLM_OPERATIONS_SQL} AND {counted}) AS llm_calls,
            count(*) FILTER (WHERE s.operation IN {LLM_OPERATIONS_SQL} AND s.status = 'error' AND {counted})
                AS errors,
            coalesce(sum(s.total_tokens) FILTER (WHERE {counted}), 0)::BIGINT AS total_tokens,
            coalesce(sum(s.cost_usd) FILTER (WHERE {counted}), 0)::DOUBLE AS cost_usd,
            min(s.start_time) AS first_seen,
            max(s.end_time) AS last_seen,
            arg_min(s.user_id, s.start_time) FILTER (WHERE s.user_id IS NOT NULL) AS user_id,
            arg_min(s.tenant_id, s.start_time) FILTER (WHERE s.tenant_id IS NOT NULL) AS tenant_id
        FROM spans s JOIN chosen USING (session_id)
        WHERE s.project_id = ? AND {within}
        GROUP BY s.session_id
        ORDER BY any_value(chosen.last_active) DESC, s.session_id
        """
        params = [session_ids, [row[1] for row in chosen], project_id, *within_params]
        return cur.sql(sql, params=params).to_arrow_table()

    def scores(self, project_id: str, trace_id: str) -> pa.Table:
        return self._arrow(
            f"SELECT {', '.join(SCORE_FIELD_NAMES)} FROM scores WHERE trace_id = ? AND project_id = ? "
            "ORDER BY created_at, score_id",
            [trace_id, project_id],
        )

    def session_starts(self, project_id: str, session_id: str) -> tuple[datetime, datetime] | None:
        with self._conn.cursor() as cur:
            hours = trace_list.hours_of(cur, project_id, [session_id], of="session")
        if session_id not in hours:
            return None
        since, until = trace_list.starts_within(*hours[session_id])
        return since.replace(tzinfo=UTC), until.replace(tzinfo=UTC)

    def session_scores(self, project_id: str, session_id: str) -> pa.Table:
        return self._arrow(
            f"SELECT {', '.join(SCORE_FIELD_NAMES)} FROM scores WHERE session_id = ? AND project_id = ? "
            "ORDER BY created_at, score_id",
            [session_id, project_id],
        )

    def score_summary(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        name: str | None,
        beyond: tuple[str, float] | None = None,
        bucket_seconds: int | None = None,
    ) -> pa.Table:
        params = DuckDBDialect()
        groups = select_groups(
            group_by, params, bucket_seconds, alias="sp", time_column="sp.start_time::TIMESTAMP"
        )
        where = where_clause(f, params, alias="sp")
        sc_params: list[Any] = [f.project_id]
        named = ""
        if name is not None:
            named = "AND sc.name = ?"
            sc_params.append(name)
        past = ""  # the column only when asked: the scores API returns these rows as they are
        if beyond is not None:
            op = "<" if beyond[0] == "<" else ">"
            past = f", count(*) FILTER (WHERE sc.value {op} {float(beyond[1])!r}) AS beyond"
        # The scored span, or for a trace-level score the trace's root span, carries the tags
        # (inherited ones included) and the time.
        sql = f"""
        SELECT sc.name, sc.data_type, {", ".join([*groups, ""])}
            count(*) AS scores,
            avg(sc.value) AS mean,
            min(sc.value) AS min,
            max(sc.value) AS max,
            histogram(sc.string_value) FILTER (WHERE sc.string_value IS NOT NULL) AS labels{past}
        FROM scores sc
        JOIN spans sp ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
            AND (sp.span_id = sc.span_id OR (sc.span_id = '' AND sp.parent_span_id = ''))
        WHERE sc.project_id = ? {named} AND {where}
        GROUP BY ALL ORDER BY sc.name, scores DESC
        """
        return self._arrow(sql, [*sc_params, *params])

    def score_means_by_trace(self, f: SpanFilter, names: tuple[str, ...]) -> pa.Table:
        params = DuckDBDialect()
        where = where_clause(f, params, alias="sp")
        sql = f"""
        SELECT sc.trace_id, sc.name, avg(sc.value) AS mean
        FROM scores sc
        JOIN spans sp ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
            AND (sp.span_id = sc.span_id OR (sc.span_id = '' AND sp.parent_span_id = ''))
        WHERE sc.project_id = ? AND list_contains(?, sc.name) AND sc.value IS NOT NULL AND {where}
        GROUP BY ALL ORDER BY sc.trace_id, sc.name
        """
        return self._arrow(sql, [f.project_id, list(names), *params])

    def lowest_scores(self, f: SpanFilter, name: str, limit: int) -> pa.Table:
        params = DuckDBDialect()
        where = where_clause(f, params, alias="sp")
        sql = f"""
        SELECT sc.trace_id, sc.span_id, sc.session_id, sc.value, sc.string_value AS label, sc.comment,
               sc.source, sp.start_time, sp.feature, sp.prompt_version, sp.request_model
        FROM scores sc
        JOIN spans sp ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
            AND (sp.span_id = sc.span_id OR (sc.span_id = '' AND sp.parent_span_id = ''))
        WHERE sc.project_id = ? AND sc.name = ? AND sc.data_type <> 'categorical' AND sc.value IS NOT NULL
          AND {where}
        ORDER BY sc.value, sp.start_time DESC, sc.trace_id LIMIT ?
        """
        return self._arrow(sql, [f.project_id, name, *params, int(limit)])

    def aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, distinct: bool = True
    ) -> pa.Table:
        groups = select_groups(group_by, DuckDBDialect(), bucket_seconds)
        params = DuckDBDialect()
        where = where_clause(f, params)
        select = ", ".join([*groups, ""]) if groups else ""
        errors_by_type = ", ".join(
            f"count(*) FILTER (WHERE {LLM_CALL} AND status = 'error' AND error_type = '{t}') AS errors_{t}"
            for t in ERROR_TYPES
        )
        # What a rollup row sums (rollups.COUNTS), then what only spans can count.
        sql = f"""
        SELECT {select} {rollups.COUNTS},
            {"count(DISTINCT trace_id)" if distinct else "NULL::BIGINT"} AS traces,
            count(*) FILTER (WHERE {LLM_CALL} AND status = 'error') AS errors,
            count(*) FILTER (WHERE {LLM_CALL} AND status <> 'error') AS answered,
            {"count(DISTINCT session_id)" if distinct else "NULL::BIGINT"} AS sessions,
            {"count(DISTINCT user_id)" if distinct else "NULL::BIGINT"} AS users,
            {errors_by_type}
        FROM spans
        WHERE {where} AND duplicate_of IS NULL
        {"GROUP BY ALL" if groups else ""}
        ORDER BY {"1" if bucket_seconds is not None else "cost_usd DESC"}
        """
        return self._arrow(sql, params)

    def distinct_counts(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None
    ) -> pa.Table:
        groups = select_groups(group_by, DuckDBDialect(), bucket_seconds)
        params = DuckDBDialect()
        where = where_clause(f, params)
        select = ", ".join([*groups, ""]) if groups else ""
        sql = f"""
        SELECT {select} count(DISTINCT trace_id) AS traces, count(DISTINCT session_id) AS sessions,
            count(DISTINCT user_id) AS users
        FROM spans
        WHERE {where} AND duplicate_of IS NULL
        {"GROUP BY ALL" if groups else ""}
        """
        return self._arrow(sql, params)

    def quantiles(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        quantiles: tuple[float, ...],
        bucket_seconds: int | None = None,
    ) -> pa.Table:
        groups = select_groups(group_by, DuckDBDialect(), bucket_seconds)
        qs = "[" + ", ".join(repr(float(q)) for q in quantiles if 0 <= q <= 1) + "]"
        parts = []
        for m in measures:
            column = allowed_column(m, _MEASURES)
            parts.append(f"quantile_cont({column}, {qs}) AS {column}")
            parts.append(f"count({column}) AS {column}_count")
        params = DuckDBDialect()
        where = where_clause(f, params)
        select = ", ".join([*groups, "count(*) AS requests", *parts])
        order = "1" if bucket_seconds is not None else "requests DESC"
        sql = (
            f"SELECT {select} FROM spans WHERE {where} AND {LLM_CALL} "
            f"AND duplicate_of IS NULL {'GROUP BY ALL' if groups else ''} ORDER BY {order}"
        )
        return self._arrow(sql, params)

    def rollup_aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, grain: Grain = MINUTE
    ) -> pa.Table:
        sql, params = rollups.aggregate_sql(f, group_by, bucket_seconds, grain)
        return self._arrow(sql, params)

    def sketch(
        self,
        parts: Sequence[tuple[Grain | None, SpanFilter]],
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        bucket_seconds: int | None,
    ) -> pa.Table:
        sql, params = rollups.sketch_sql(parts, group_by, measures, bucket_seconds)
        return self._arrow(sql, params)

    def histogram(
        self, f: SpanFilter, group_by: tuple[str, ...], measure: str, bounds: tuple[float, ...]
    ) -> pa.Table:
        groups = select_groups(group_by, DuckDBDialect())
        column = allowed_column(measure, _HISTOGRAM_MEASURES)
        buckets = [
            f"count(*) FILTER (WHERE {column} <= {float(bound)!r}) AS le_{n}"
            for n, bound in enumerate(bounds)
        ]
        params = DuckDBDialect()
        where = where_clause(f, params)
        select = ", ".join(
            [*groups, f"count({column}) AS count", f"coalesce(sum({column}), 0)::DOUBLE AS sum", *buckets]
        )
        sql = (
            f"SELECT {select} FROM spans WHERE {where} AND {LLM_CALL} "
            f"AND duplicate_of IS NULL AND {column} IS NOT NULL {'GROUP BY ALL' if groups else ''}"
        )
        return self._arrow(sql, params)

    def totals(self, project_id: str) -> dict[str, Any]:
        with self._conn.cursor() as cur:
            row = cur.execute(
                """
                SELECT count(*), count(DISTINCT trace_id),
                       coalesce(sum(total_tokens) FILTER (WHERE duplicate_of IS NULL), 0),
                       coalesce(sum(cost_usd) FILTER (WHERE duplicate_of IS NULL), 0),
                       count(*) FILTER (WHERE cost_known = false AND duplicate_of IS NULL),
                       max(end_time)
                FROM spans WHERE project_id = ?
                """,
                [project_id],
            ).fetchone()
        last = row[5]
        return {
            "spans": row[0],
            "traces": row[1],
            "total_tokens": int(row[2]),
            "cost_usd": float(row[3]),
            "unpriced_spans": row[4],
            "last_span_end": last.replace(tzinfo=UTC).isoformat() if last else None,
        }

    def export(self, f: SpanFilter, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        params = DuckDBDialect()
        where = where_clause(f, params)
        with self._conn.cursor() as cur:
            reader = cur.sql(
                f"SELECT {SPAN_COLUMNS} FROM spans WHERE {where} ORDER BY start_time, span_id",
                params=params,
            ).to_arrow_reader(batch_rows)
            yield from reader
