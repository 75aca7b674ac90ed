"""Reads from ClickHouse (every read says FINAL): span lists, traces, sessions, scores, and the
aggregates, quantiles, sketches and histograms query/ builds its answers from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import (
    ERROR_TYPES,
    FIELD_NAMES,
    MINUTE,
    SAMPLED_CALL_FIELDS,
    SCORE_FIELD_NAMES,
    Grain,
)
from tokentrace.store.clickhouse import rollups
from tokentrace.store.clickhouse.connection import SPANS
from tokentrace.store.clickhouse.dialect import ClickHouseDialect
from tokentrace.store.clickhouse.rollups import COMMITTED, SETTINGS, VALID
from tokentrace.store.filters import SpanFilter, TraceFilter
from tokentrace.store.python_rows import python_rows
from tokentrace.store.sql import LLM_CALL, allowed_column, group_clause, names, select_groups, where_clause

_MEASURES = frozenset({"duration_ms", "ttft_ms", "tpot_ms"})
_SCORED_TAGS = ("feature", "prompt_version", "request_model")  # what a low score is shown with


_HISTOGRAM_MEASURES = _MEASURES | {"input_tokens", "output_tokens"}


class ClickHouseReads:
    """SpanReader over the spans table (and the rollups, for rollup_aggregate and sketch)."""

    def content(self, project_id: str, trace_id: str, span_id: str) -> dict[str, Any] | None:
        # Parts in arrival order: each message list from the first part that has it, events
        # from every part, a part sent again (an exporter's retry) counted once.
        rows = python_rows(
            self._ch.query(
                "SELECT system_instructions, input_messages, output_messages, events FROM content_parts "
                "WHERE project_id = {p:String} AND trace_id = {t:String} AND span_id = {s:String} "
                "ORDER BY revision",
                {"p": project_id, "t": trace_id, "s": span_id},
            )
        )
        if not rows:
            return None
        merged: dict[str, Any] = {}
        for name in ("system_instructions", "input_messages", "output_messages"):
            first = next((r[name] for r in rows if r[name] is not None), None)
            merged[name] = orjson.loads(first) if first else None
        events = ""
        for part in (r["events"] for r in rows if r["events"]):
            inner = part.strip("[]")
            if inner and inner not in events:
                events = f"{events},{inner}" if events else inner
        merged["events"] = orjson.loads(f"[{events}]") if events else None
        return merged

    def trace_summaries(self, f: TraceFilter, limit: int, offset: int) -> pa.Table:
        params = ClickHouseDialect()
        where = where_clause(f.spans, params)
        post = []
        if f.min_cost_usd is not None:
            post.append("cost_usd >= {min_cost:Float64}")
            params["min_cost"] = f.min_cost_usd
        if f.min_duration_ms is not None:
            post.append("duration_ms >= {min_duration:Float64}")
            params["min_duration"] = f.min_duration_ms
        if f.errors_only:
            post.append("status = 'error'")
        for n, condition in enumerate(f.scores):
            kind = "String" if isinstance(condition.value, str) else "Float64"
            where += (
                f" AND trace_id IN (SELECT trace_id FROM scores FINAL WHERE project_id = {{project:String}} "
                f"AND name = {{score_name{n}:String}} AND {condition.column} {condition.op} "
                f"{{score_value{n}:{kind}}})"
            )
            params |= {f"score_name{n}": condition.name, f"score_value{n}": condition.value}
        counted = "duplicate_of IS NULL"
        duration = "(toUnixTimestamp64Nano(max(end_time)) - toUnixTimestamp64Nano(min(start_time))) / 1e6"
        status = "if(countIf(status = 'error') > 0, 'error', 'ok')"
        # As DuckDB's: the page is picked before the summaries are built.
        page = f"ORDER BY first DESC, trace_id LIMIT {int(limit)} OFFSET {int(offset)}"
        hits = f"SELECT trace_id, min(start_time) AS first FROM {SPANS} WHERE {where} GROUP BY trace_id"
        if post:
            chosen = f"""
            SELECT trace_id, first FROM (
                SELECT trace_id, any(first) AS first, sumIf(cost_usd, {counted}) AS cost_usd,
                    {duration} AS duration_ms, {status} AS status
                FROM {SPANS} INNER JOIN ({hits}) AS hits USING (trace_id)
                WHERE project_id = {{project:String}} GROUP BY trace_id
            ) WHERE {" AND ".join(post)} {page}"""
        else:
            chosen = f"{hits} {page}"
        sql = f"""
        SELECT * EXCEPT (first) FROM (
            SELECT trace_id, any(chosen.first) AS first,
                min(start_time) AS start_time,
                max(end_time) AS end_time,
                {duration} AS duration_ms,
                count() AS spans,
                if(countIf(parent_span_id = '') > 0, argMinIf(name, start_time, parent_span_id = ''),
                   argMin(name, start_time)) AS root_name,
                {status} AS status,
                arraySort(groupUniqArrayIf(assumeNotNull(error_type), error_type IS NOT NULL)) AS error_types,
                arraySort(groupUniqArrayIf(assumeNotNull(coalesce(response_model, request_model)),
                                           coalesce(response_model, request_model) IS NOT NULL)) AS models,
                countIf({LLM_CALL} AND {counted}) AS llm_calls,
                toInt64(sumIf(input_tokens, {counted})) AS input_tokens,
                toInt64(sumIf(output_tokens, {counted})) AS output_tokens,
                toInt64(sumIf(total_tokens, {counted})) AS total_tokens,
                sumIf(cost_usd, {counted}) AS cost_usd,
                countIf(cost_known = false AND {counted}) AS unpriced_spans,
                argMinIf(user_id, start_time, user_id IS NOT NULL) AS user_id,
                argMinIf(session_id, start_time, session_id IS NOT NULL) AS session_id,
                argMinIf(tenant_id, start_time, tenant_id IS NOT NULL) AS tenant_id,
                argMinIf(feature, start_time, feature IS NOT NULL) AS feature,
                argMin(service_name, start_time) AS service_name
            FROM {SPANS} INNER JOIN ({chosen}) AS chosen USING (trace_id)
            WHERE project_id = {{project:String}}
            GROUP BY trace_id
        ) ORDER BY first DESC, trace_id {SETTINGS}
        """
        table = self._ch.query(sql, params)
        for name in ("error_types", "models"):  # ClickHouse arrays are never NULL; DuckDB's empty lists are
            column = table[name]
            empty = pc.equal(pc.list_value_length(column), 0)
            table = table.set_column(
                table.schema.get_field_index(name),
                name,
                pc.if_else(empty, pa.nulls(len(column), column.type), column),
            )
        return table

    def session_summaries(self, f: SpanFilter, limit: int, offset: int) -> pa.Table:
        params = ClickHouseDialect()
        where = where_clause(f, params)
        counted = "duplicate_of IS NULL"
        # As DuckDB's: the sessions most recently active in the filter, each summed whole.
        chosen = (
            f"SELECT session_id, max(end_time) AS last_active FROM {SPANS} "
            f"WHERE {where} AND session_id IS NOT NULL GROUP BY session_id "
            f"ORDER BY last_active DESC, session_id LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        sql = f"""
        SELECT * EXCEPT (last_active) FROM (
            SELECT session_id, any(chosen.last_active) AS last_active,
                uniqExact(trace_id) AS traces,
                countIf({LLM_CALL} AND {counted}) AS llm_calls,
                countIf({LLM_CALL} AND status = 'error' AND {counted}) AS errors,
                toInt64(sumIf(coalesce(total_tokens, 0), {counted})) AS total_tokens,
                toFloat64(sumIf(coalesce(cost_usd, 0), {counted})) AS cost_usd,
                min(start_time) AS first_seen,
                max(end_time) AS last_seen,
                argMinIf(user_id, start_time, user_id IS NOT NULL) AS user_id,
                argMinIf(tenant_id, start_time, tenant_id IS NOT NULL) AS tenant_id
            FROM {SPANS} INNER JOIN ({chosen}) AS chosen USING (session_id)
            WHERE project_id = {{project:String}}
            GROUP BY session_id
        ) ORDER BY last_active DESC, session_id {SETTINGS}
        """
        return self._ch.query(sql, params)

    def score_summary(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        name: str | None,
        beyond: tuple[str, float] | None = None,
        bucket_seconds: int | None = None,
    ) -> pa.Table:
        groups = select_groups(group_by, ClickHouseDialect(), bucket_seconds)
        params = ClickHouseDialect()
        where = where_clause(f, params)
        named = "AND name = {score_name:String}" if name is not None else ""
        if name is not None:
            params["score_name"] = name
        tags = ", ".join(["project_id", "trace_id", "span_id", "parent_span_id", *groups])
        # The scored span, or for a trace-level score the trace's root span, carries the tags
        # and the time (as DuckDB's): span scores join on the span, trace scores on the root.
        scored = f"""
            SELECT sc.name AS name, sc.data_type AS data_type, sc.value AS value,
                sc.string_value AS string_value, sp.*
            FROM (SELECT * FROM scores FINAL WHERE project_id = {{project:String}} {named}) AS sc
            INNER JOIN (SELECT {tags} FROM {SPANS} WHERE {where}) AS sp
                ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
                AND sp.span_id = if(sc.span_id = '', sp.span_id, sc.span_id)
            WHERE sc.span_id != '' OR sp.parent_span_id = ''"""
        past = ""  # the column only when asked: the scores API returns these rows as they are
        if beyond is not None:
            op = "<" if beyond[0] == "<" else ">"
            past = f", toInt64(countIf(value {op} {float(beyond[1])!r})) AS beyond"
        keys = ["name", "data_type", *names(groups)]
        sql = f"""
        SELECT {", ".join(keys)},
            count() AS scores, avg(value) AS mean, min(value) AS min, max(value) AS max,
            sumMapIf(map(assumeNotNull(string_value), toUInt64(1)), string_value IS NOT NULL) AS labels{past}
        FROM ({scored}) GROUP BY {", ".join(keys)} ORDER BY name, scores DESC {SETTINGS}
        """
        return self._ch.query(sql, params)

    def score_means_by_trace(self, f: SpanFilter, names: tuple[str, ...]) -> pa.Table:
        params = ClickHouseDialect()
        where = where_clause(f, params)
        params["score_names"] = list(names)
        sql = f"""
        SELECT sc.trace_id AS trace_id, sc.name AS name, avg(sc.value) AS mean
        FROM (SELECT * FROM scores FINAL WHERE project_id = {{project:String}}
              AND has({{score_names:Array(String)}}, name) AND value IS NOT NULL) AS sc
        INNER JOIN (SELECT project_id, trace_id, span_id, parent_span_id FROM {SPANS} WHERE {where}) AS sp
            ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
            AND sp.span_id = if(sc.span_id = '', sp.span_id, sc.span_id)
        WHERE sc.span_id != '' OR sp.parent_span_id = ''
        GROUP BY trace_id, name ORDER BY trace_id, name {SETTINGS}
        """
        return self._ch.query(sql, params)

    def lowest_scores(self, f: SpanFilter, name: str, limit: int) -> pa.Table:
        params = ClickHouseDialect()
        where = where_clause(f, params)
        params["score_name"] = name
        params["n"] = int(limit)
        columns = ", ".join(
            ("project_id", "trace_id", "span_id", "parent_span_id", "start_time", *_SCORED_TAGS)
        )
        sql = f"""
        SELECT sc.trace_id AS trace_id, sc.span_id AS span_id, sc.session_id AS session_id, sc.value AS value,
               sc.string_value AS label, sc.comment AS comment, sc.source AS source,
               sp.start_time AS start_time, sp.feature AS feature, sp.prompt_version AS prompt_version,
               sp.request_model AS request_model
        FROM (SELECT * FROM scores FINAL WHERE project_id = {{project:String}}
              AND name = {{score_name:String}} AND data_type != 'categorical' AND value IS NOT NULL) AS sc
        INNER JOIN (SELECT {columns} FROM {SPANS} WHERE {where}) AS sp
            ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
            AND sp.span_id = if(sc.span_id = '', sp.span_id, sc.span_id)
        WHERE sc.span_id != '' OR sp.parent_span_id = ''
        ORDER BY value, start_time DESC, trace_id LIMIT {{n:UInt32}} {SETTINGS}
        """
        return self._ch.query(sql, params)

    def scores(self, project_id: str, trace_id: str) -> pa.Table:
        return self._ch.query(
            f"SELECT {', '.join(SCORE_FIELD_NAMES)} FROM scores FINAL WHERE project_id = {{p:String}} "
            "AND trace_id = {t:String} ORDER BY created_at, score_id",
            {"p": project_id, "t": trace_id},
        )

    def session_starts(self, project_id: str, session_id: str) -> tuple[datetime, datetime] | None:
        return None  # no table of a session's hours here: its reads filter session_id over the range

    def session_scores(self, project_id: str, session_id: str) -> pa.Table:
        return self._ch.query(
            f"SELECT {', '.join(SCORE_FIELD_NAMES)} FROM scores FINAL WHERE project_id = {{p:String}} "
            "AND session_id = {s:String} ORDER BY created_at, score_id",
            {"p": project_id, "s": session_id},
        )

    def histogram(
        self, f: SpanFilter, group_by: tuple[str, ...], measure: str, bounds: tuple[float, ...]
    ) -> pa.Table:
        groups = select_groups(group_by, ClickHouseDialect())
        column = allowed_column(measure, _HISTOGRAM_MEASURES)
        buckets = [f"countIf({column} <= {float(bound)!r}) AS le_{n}" for n, bound in enumerate(bounds)]
        params = ClickHouseDialect()
        where = where_clause(f, params)
        select = ", ".join(
            [*groups, f"count({column}) AS count", f"toFloat64(sum({column})) AS sum", *buckets]
        )
        sql = (
            f"SELECT {select} FROM {SPANS} WHERE {where} AND {LLM_CALL} AND duplicate_of IS NULL "
            f"AND {column} IS NOT NULL {group_clause(groups)} {SETTINGS}"
        )
        return self._ch.query(sql, params)

    def export(self, f: SpanFilter, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        params = ClickHouseDialect()
        where = where_clause(f, params)
        table = self._ch.query(
            f"SELECT {', '.join(FIELD_NAMES)} FROM {SPANS} WHERE {where} ORDER BY start_time, span_id",
            params,
        )
        yield from table.to_batches(max_chunksize=batch_rows)

    def trace_spans(self, project_id: str, trace_id: str) -> pa.Table:
        return self._ch.query(
            f"SELECT {', '.join(FIELD_NAMES)} FROM {SPANS} WHERE project_id = {{project:String}} "
            "AND trace_id = {trace:String} ORDER BY start_time, span_id",
            {"project": project_id, "trace": trace_id},
        )

    def spans(self, f: SpanFilter, columns: tuple[str, ...], limit: int | None = None) -> pa.Table:
        select = ", ".join(allowed_column(c, FIELD_NAMES) for c in columns)
        params = ClickHouseDialect()
        where = where_clause(f, params)
        sql = f"SELECT {select} FROM {SPANS} WHERE {where} ORDER BY start_time"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._ch.query(sql, params)

    def llm_calls(self, f: SpanFilter, columns: tuple[str, ...]) -> pa.Table:
        select = ", ".join(allowed_column(c, SAMPLED_CALL_FIELDS) for c in columns)
        params = ClickHouseDialect()
        where = where_clause(f, params)
        union = (
            f"SELECT {select}, false AS sampled_out, cityHash64(trace_id) AS trace_key FROM {SPANS} "
            f"WHERE {where} AND {LLM_CALL} AND duplicate_of IS NULL AND trace_id NOT IN ({COMMITTED}) "
            f"UNION ALL SELECT {select}, true, cityHash64(trace_id) "
            f"FROM sampled_calls WHERE {where} AND {VALID}"
        )
        return self._ch.query(f"SELECT * FROM ({union}) {SETTINGS}", params)

    def totals(self, project_id: str) -> dict[str, Any]:
        row = python_rows(
            self._ch.query(
                f"""
            SELECT count() AS spans, uniqExact(trace_id) AS traces,
                   sumIf(total_tokens, duplicate_of IS NULL) AS total_tokens,
                   sumIf(cost_usd, duplicate_of IS NULL) AS cost_usd,
                   countIf(cost_known = false AND duplicate_of IS NULL) AS unpriced_spans,
                   if(count() = 0, NULL, max(end_time)) AS last_span_end
            FROM {SPANS} WHERE project_id = {{project:String}}
            {SETTINGS}
            """,
                {"project": project_id},
            )
        )[0]
        last = row["last_span_end"]
        return {
            "spans": row["spans"],
            "traces": row["traces"],
            "total_tokens": int(row["total_tokens"] or 0),
            "cost_usd": float(row["cost_usd"] or 0),
            "unpriced_spans": row["unpriced_spans"],
            "last_span_end": last.astimezone(UTC).isoformat() if last else None,
        }

    def aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, distinct: bool = True
    ) -> pa.Table:
        groups = select_groups(group_by, ClickHouseDialect(), bucket_seconds)
        params = ClickHouseDialect()
        where = where_clause(f, params)
        errors_by_type = ", ".join(
            f"countIf({LLM_CALL} AND status = 'error' AND error_type = '{t}') AS errors_{t}"
            for t in ERROR_TYPES
        )
        select = ", ".join([*groups, ""]) if groups else ""
        sql = f"""
        SELECT * FROM (SELECT {select}
            {rollups.COUNTS},
            {"uniqExact(trace_id)" if distinct else "NULL::Nullable(UInt64)"} AS traces,
            countIf({LLM_CALL} AND status = 'error') AS errors,
            countIf({LLM_CALL} AND status != 'error') AS answered,
            {"uniqExactIf(session_id, session_id IS NOT NULL)" if distinct else "NULL::Nullable(UInt64)"}
                AS sessions,
            {"uniqExactIf(user_id, user_id IS NOT NULL)" if distinct else "NULL::Nullable(UInt64)"} AS users,
            {errors_by_type}
        FROM {SPANS}
        WHERE {where} AND duplicate_of IS NULL
        {group_clause(groups)})
        ORDER BY {"bucket" if bucket_seconds is not None else "cost_usd DESC"}
        {SETTINGS}
        """
        return self._ch.query(sql, params)

    def distinct_counts(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None
    ) -> pa.Table:
        groups = select_groups(group_by, ClickHouseDialect(), bucket_seconds)
        params = ClickHouseDialect()
        where = where_clause(f, params)
        select = ", ".join([*groups, ""]) if groups else ""
        sql = f"""
        SELECT {select} uniqExact(trace_id) AS traces,
            uniqExactIf(session_id, session_id IS NOT NULL) AS sessions,
            uniqExactIf(user_id, user_id IS NOT NULL) AS users
        FROM {SPANS}
        WHERE {where} AND duplicate_of IS NULL
        {group_clause(groups)}
        {SETTINGS}
        """
        return self._ch.query(sql, params)

    def quantiles(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        quantiles: tuple[float, ...],
        bucket_seconds: int | None = None,
    ) -> pa.Table:
        groups = select_groups(group_by, ClickHouseDialect(), bucket_seconds)
        levels = ", ".join(repr(float(q)) for q in quantiles if 0 <= q <= 1)
        parts = []
        for m in measures:
            column = allowed_column(m, _MEASURES)
            # quantilesExactInclusive interpolates between order statistics as DuckDB's
            # quantile_cont does; an empty group has NULL, not an empty array.
            parts.append(
                f"if(count({column}) = 0, NULL, quantilesExactInclusive({levels})({column})) AS {column}"
            )
            parts.append(f"count({column}) AS {column}_count")
        params = ClickHouseDialect()
        where = where_clause(f, params)
        select = ", ".join([*groups, "count() AS requests", *parts])
        order = "bucket" if bucket_seconds is not None else "requests DESC"
        sql = (
            f"SELECT * FROM (SELECT {select} FROM {SPANS} WHERE {where} AND {LLM_CALL} "
            f"AND duplicate_of IS NULL {group_clause(groups)}) ORDER BY {order} {SETTINGS}"
        )
        return self._ch.query(sql, params)

    def rollup_aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, grain: Grain = MINUTE
    ) -> pa.Table:
        sql, params = rollups.aggregate_sql(f, group_by, bucket_seconds, grain)
        return self._ch.query(sql, params)

    def sketch(
        self,
        parts: Sequence[tuple[Grain | None, SpanFilter]],
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        bucket_seconds: int | None,
    ) -> pa.Table:
        sql, params = rollups.sketch_sql(parts, group_by, measures, bucket_seconds)
        return self._ch.query(sql, params)
