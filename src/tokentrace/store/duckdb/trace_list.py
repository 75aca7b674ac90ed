"""The trace list over DuckDB: a page of traces, newest first, each with its summary.

A trace is placed by its first span that matches the filter. The page is looked for in the
range's last hour first, then its last 4, 16, 64 and 256 hours, and only then over the whole
range: picking 50 traces at 10M spans over 30 days grouped every span of the range by trace
(~310 ms) where the last hour holds them (~2 ms). Within a window, a trace with spans before it
(trace_hours says which, read in the statement that finds the window's traces) may have matched
earlier: with no condition but the range, one with an hour wholly before the window and inside
the range did; the few others are placed by a look at their earlier spans, so the page is
exactly the one the whole range gives. The page's summaries then read only the hours its traces
have spans in (`hours_of`, `within_hours`: one trace's read uses them too).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from tokentrace.store.duckdb.connection import naive
from tokentrace.store.duckdb.dialect import DuckDBDialect
from tokentrace.store.filters import SCORE_OPERATORS, ScoreCondition, SpanFilter, TraceFilter
from tokentrace.store.sql import LLM_OPERATIONS_SQL, where_clause

#: How far back from the range's end each look for a page reaches, in hours, before the whole range.
WINDOWS = (1, 4, 16, 64, 256)
#: A window placing more traces than this without filling the page gives way to the whole range:
#: the next one would place four times as many again.
MOST_PLACED = 5_000
#: With a condition on totals, a window summing more traces than this gives way to the whole range.
#: Errors only, or a cost most traces do not reach, fill a page from a few hours' traces: at 10M
#: spans (2,000 traces an hour) 110-170 ms where the whole range takes ~850 ms.
MOST_SUMMED = 12_000
#: A condition on totals over a range holding at least this share of the project's hours, and no
#: span or score condition, sums every trace's spans in one pass (~400 ms at 10M spans, against
#: ~1.1 s for the page's traces first and their totals after, two aggregations and a join).
ONE_PASS_SHARE = 0.5

_HOUR = timedelta(hours=1)
# trace_hours is date_trunc('hour') of the start cast to microseconds, which rounds: a span in
# the last half microsecond of an hour is kept in the next one. A bound read from it starts a
# microsecond early, and a trace whose first hour is the window's may have started before it.
_ROUNDED = timedelta(microseconds=1)
_COUNTED = "s.duplicate_of IS NULL"
_DURATION = "(epoch_ns(max(s.end_time)) - epoch_ns(min(s.start_time))) / 1e6"
_STATUS = "CASE WHEN bool_or(s.status = 'error') THEN 'error' ELSE 'ok' END"
_IDS = "(SELECT unnest(?::VARCHAR[]))"
_ANY = 2**63 - 1  # no most

#: Traces (trace_id, the start of its first matching span in ns), newest first.
Placed = list[tuple[str, int]]
#: The first and the last hour of each trace's spans (trace_hours), by trace id.
Hours = dict[str, tuple[datetime, datetime]]
#: A page of traces and their hours.
Page = tuple[Placed, Hours]


def _score_condition(condition: ScoreCondition) -> tuple[str, list[Any]]:
    op = condition.op if condition.op in SCORE_OPERATORS else "="
    if isinstance(condition.value, str):
        return f"name = ? AND string_value {op} ?", [condition.name, condition.value]
    return f"name = ? AND value {op} ?", [condition.name, float(condition.value)]


def _span_condition(f: TraceFilter) -> tuple[str, list[Any]]:
    """What a trace's spans must match (its scores included) to list it."""
    params = DuckDBDialect()
    where = where_clause(f.spans, params)
    for condition in f.scores:
        scored, scored_params = _score_condition(condition)
        where += f" AND trace_id IN (SELECT trace_id FROM scores WHERE project_id = ? AND {scored})"
        params += [f.spans.project_id, *scored_params]
    return where, params


def _total_condition(f: TraceFilter) -> tuple[str, list[Any]]:
    """What a trace's totals must pass (cost, duration, an error), as SQL over `_totals`."""
    post: list[str] = []
    params: list[Any] = []
    if f.min_cost_usd is not None:
        post.append("cost_usd >= ?")
        params.append(f.min_cost_usd)
    if f.min_duration_ms is not None:
        post.append("duration_ms >= ?")
        params.append(f.min_duration_ms)
    if f.errors_only:
        post.append("status = 'error'")
    return " AND ".join(post), params


def _totals(spans: str, first: str | None = None) -> str:
    """Each trace's totals the list filters by, over its spans in `spans` (a FROM target), and
    `first` when given (an aggregate placing the trace, the totals placing the traces too)."""
    placing = f"{first} AS first, " if first else ""
    return f"""SELECT s.trace_id, {placing}sum(s.cost_usd) FILTER (WHERE {_COUNTED}) AS cost_usd,
        {_DURATION} AS duration_ms, {_STATUS} AS status
    FROM {spans} GROUP BY s.trace_id"""


def hours_of(cur: duckdb.DuckDBPyConnection, project: str, ids: list[str], of: str = "trace") -> Hours:
    """The first and the last hour each trace (or, `of="session"`, each session) has spans in
    (trace_hours, session_hours)."""
    table, key = {"trace": ("trace_hours", "trace_key"), "session": ("session_hours", "session_key")}[of]
    rows = cur.execute(
        "SELECT ids.id, min(h.hour), max(h.hour) "
        "FROM (SELECT unnest(?::VARCHAR[]) AS id) ids "
        f"JOIN {table} h ON h.{key} = md5_number(ids.id) "
        "WHERE h.project_id = ? GROUP BY ids.id",
        [ids, project],
    ).fetchall()
    return {found: (first, last) for found, first, last in rows}


def _ceil_hour(instant: datetime) -> datetime:
    floor = instant.replace(minute=0, second=0, microsecond=0)
    return floor if floor == instant else floor + _HOUR


def starts_within(first_hour: datetime, last_hour: datetime) -> tuple[datetime, datetime]:
    """The start times spans in these hours have: from the first hour (a microsecond early: the
    hours round) to the end of the last, end exclusive."""
    return first_hour - _ROUNDED, last_hour + _HOUR


def within_hours(hours: Hours, trace_ids: list[str]) -> tuple[str, list[Any]]:
    """A condition on `s.start_time` holding the traces' (or sessions') spans: from the first hour
    they have spans in to the hour after the last (none when their hours lack one)."""
    if not trace_ids or any(trace_id not in hours for trace_id in trace_ids):
        return "true", []
    first = min(hours[trace_id][0] for trace_id in trace_ids)
    last = max(hours[trace_id][1] for trace_id in trace_ids)
    return "s.start_time >= ? AND s.start_time < ?", list(starts_within(first, last))


class Looks(NamedTuple):
    """Where a list newest first looks before the whole range."""

    start: datetime  #: the range's start (the project's first hour when it has none)
    windows: list[datetime]  #: the windows' starts, newest first
    share: float  #: the share of the project's hours the range holds
    to_end: bool  #: whether the range reaches the project's last hour's end


def windows(cur: duckdb.DuckDBPyConnection, f: SpanFilter) -> Looks | None:
    """The range's start and the windows' starts, back from the range's end (its last hour when
    it has none) by WINDOWS hours, each inside the range. None: no spans at all."""
    first_hour, last_hour = cur.execute(
        "SELECT min(hour), max(hour) FROM trace_hours WHERE project_id = ?", [f.project_id]
    ).fetchall()[0]
    if first_hour is None:
        return None
    end = last_hour + _HOUR if f.until is None else min(last_hour + _HOUR, naive(f.until))
    start = first_hour if f.since is None else max(first_hour, naive(f.since))
    top = _ceil_hour(end)
    # A window reaching the range's start is the whole range: one look at that is as cheap.
    starts = [top - timedelta(hours=back) for back in WINDOWS if top - timedelta(hours=back) > start]
    share = max(end - start, timedelta(0)) / (last_hour + _HOUR - first_hour)
    return Looks(start, starts, share, end == last_hour + _HOUR)


def _only_range(f: TraceFilter) -> bool:
    """Whether every span of the range matches (no span or score condition)."""
    return not (f.spans.equals or f.spans.name_contains or f.scores)


def _newest_first(placed: Placed) -> Placed:
    return sorted(placed, key=lambda trace: (-trace[1], trace[0]))


class DuckDBTraceList:
    """SpanReader.trace_summaries over the spans and trace_hours tables."""

    _conn: duckdb.DuckDBPyConnection

    def trace_summaries(self, f: TraceFilter, limit: int, offset: int) -> pa.Table:
        with self._conn.cursor() as cur:
            cur.begin()  # one snapshot: a write between the statements must not show in half of them
            try:
                page, hours = self._trace_page(cur, f, limit, offset)
                return self._summaries(cur, f.spans.project_id, page, hours)
            finally:
                cur.rollback()  # only read

    def _trace_page(self, cur: duckdb.DuckDBPyConnection, f: TraceFilter, limit: int, offset: int) -> Page:
        where, params = _span_condition(f)
        post, post_params = _total_condition(f)
        project = f.spans.project_id
        looks = windows(cur, f.spans)
        if looks is None:
            return [], {}
        most, need = (MOST_SUMMED if post else MOST_PLACED), limit + offset
        only_range = _only_range(f)
        # A window reaching the project's last spans sums its traces as it finds them: their
        # later spans are all in it (a range ending earlier would sum past its end)
        totals = (post, post_params) if post and only_range and looks.to_end else None
        for window in looks.windows:
            # (the hours of a window that gives way, or cannot fill the page, are not read)
            found, hours, passes = self._found(
                cur, f, where, params, window, need, most if post else None, totals
            )
            if len(found) > most and (post or len(found) < need):
                break  # four times as many in the next window: one look at the range is cheaper
            if len(found) < need:
                continue  # too few to fill the page, however they are placed
            placed = self._placed_within(cur, f, where, params, found, hours, window, looks.start)
            if post:
                placed = self._passing(cur, project, placed, hours, post, post_params, passes, window)
            if len(placed) >= need:
                return placed[offset : offset + limit], hours
        one_pass = bool(post) and looks.share >= ONE_PASS_SHARE and only_range
        placed = self._placed_over_range(
            cur, project, where, params, post, post_params, limit, offset, one_pass
        )
        return placed, hours_of(cur, project, [trace_id for trace_id, _ in placed])

    def _found(
        self,
        cur: duckdb.DuckDBPyConnection,
        f: TraceFilter,
        where: str,
        params: list[Any],
        window: datetime,
        need: int,
        most: int | None,
        totals: tuple[str, list[Any]] | None,
    ) -> tuple[Placed, Hours, dict[str, bool] | None]:
        """The traces with a matching span at or after `window`, each with the first of those;
        their hours when there are at least `need` of them and at most `most`; and with `totals`
        (a condition on them), whether each passes it over its spans from the window on (all it
        has when its first hour is the window's or later). One statement: the hours are looked up
        by the found traces' keys inside it (a Bloom filter on the trace_hours scan), not sent
        back as a list of ids (at 10M spans, 9,445 traces: 16 ms against 35)."""
        if totals is None:
            found = f"""SELECT trace_id, epoch_ns(min(start_time)) AS first FROM spans
                WHERE {where} AND start_time >= ? GROUP BY trace_id"""
            found_params = [*params, window]
            passes, passes_params = "NULL", []
        else:
            # (from a microsecond early: a span there may be rounded into the window's hour)
            summed = _totals(
                "spans s WHERE s.project_id = ? AND s.start_time >= ?",
                first=f"epoch_ns(min(s.start_time) FILTER (WHERE {where} AND s.start_time >= ?))",
            )
            found = f"SELECT * FROM ({summed}) WHERE first IS NOT NULL"
            found_params = [*params, window, f.spans.project_id, window - _ROUNDED]
            passes, passes_params = f"coalesce({totals[0]}, false)", totals[1]
        rows = cur.execute(
            f"""
            WITH found AS MATERIALIZED ({found}),
            hours AS (
                SELECT trace_key, min(hour) AS first_hour, max(hour) AS last_hour FROM trace_hours
                WHERE project_id = ? AND (SELECT count(*) FROM found) BETWEEN ? AND ?
                    AND trace_key IN (SELECT md5_number(trace_id) FROM found)
                GROUP BY trace_key
            )
            SELECT found.trace_id, found.first, hours.first_hour, hours.last_hour, {passes}
            FROM found LEFT JOIN hours ON hours.trace_key = md5_number(found.trace_id)""",
            [*found_params, f.spans.project_id, need, _ANY if most is None else most, *passes_params],
        ).fetchall()
        placed = [(trace_id, first) for trace_id, first, *_ in rows]
        hours = {trace_id: (first, last) for trace_id, _, first, last, _ in rows if first is not None}
        return placed, hours, None if totals is None else {row[0]: row[4] for row in rows}

    def _placed_within(
        self,
        cur: duckdb.DuckDBPyConnection,
        f: TraceFilter,
        where: str,
        params: list[Any],
        found: Placed,
        hours: Hours,
        window: datetime,
        start: datetime,
    ) -> Placed:
        """Of the traces `found` with a matching span at or after `window` (each with the first
        of those), the ones whose first matching span is there, newest first."""
        first_hour = {trace_id: hours[trace_id][0] if trace_id in hours else start for trace_id, _ in found}
        straddling = [trace_id for trace_id, _ in found if first_hour[trace_id] <= window]
        matched_before: set[str] = set()
        if _only_range(f):
            # Every span of the range matches: a trace with an hour wholly before the window and
            # inside the range has a match before it. Only the rest are looked at.
            inside = None if f.spans.since is None else naive(f.spans.since) + _ROUNDED
            matched_before = {
                trace_id
                for trace_id in straddling
                if first_hour[trace_id] < window and (inside is None or first_hour[trace_id] >= inside)
            }
            straddling = [trace_id for trace_id in straddling if trace_id not in matched_before]
        # Spans before the window: those that match place their trace before it (below every
        # trace placed inside it); a trace whose earlier spans all miss stays.
        look = f"SELECT DISTINCT trace_id FROM spans WHERE {where} AND start_time >= ? AND start_time < ?"
        earlier = [trace_id for trace_id in straddling if first_hour[trace_id] < window]
        if earlier:
            since = min(first_hour[trace_id] for trace_id in earlier) - _ROUNDED
            rows = cur.execute(f"{look} AND trace_id IN {_IDS}", [*params, since, window, earlier]).fetchall()
            matched_before |= {trace_id for (trace_id,) in rows}
        if len(earlier) < len(straddling):
            # A first hour that is the window's own: a span in the microsecond before it, rounded
            # into it, is all it can have earlier. That microsecond's traces are few: no ids sent.
            rows = cur.execute(look, [*params, window - _ROUNDED, window]).fetchall()
            matched_before |= {trace_id for (trace_id,) in rows} & set(straddling)
        return _newest_first(
            [(trace_id, first) for trace_id, first in found if trace_id not in matched_before]
        )

    def _passing(
        self,
        cur: duckdb.DuckDBPyConnection,
        project: str,
        placed: Placed,
        hours: Hours,
        post: str,
        post_params: list[Any],
        passes: dict[str, bool] | None,
        window: datetime,
    ) -> Placed:
        """The placed traces whose totals (over all their spans) pass `post`, in their order:
        summed here, but for those `passes` holds whole (their first hour at or after `window`)."""
        known = {}
        if passes is not None:
            known = {t: passes[t] for t, _ in placed if t in hours and hours[t][0] >= window}
        trace_ids = [trace_id for trace_id, _ in placed if trace_id not in known]
        passing = {trace_id for trace_id, passed in known.items() if passed}
        if trace_ids:
            within, within_params = within_hours(hours, trace_ids)
            spans = f"spans s WHERE s.project_id = ? AND {within} AND s.trace_id IN {_IDS}"
            rows = cur.execute(
                f"SELECT trace_id FROM ({_totals(spans)}) WHERE {post}",
                [project, *within_params, trace_ids, *post_params],
            ).fetchall()
            passing |= {trace_id for (trace_id,) in rows}
        return [trace for trace in placed if trace[0] in passing]

    def _placed_over_range(
        self,
        cur: duckdb.DuckDBPyConnection,
        project: str,
        where: str,
        params: list[Any],
        post: str,
        post_params: list[Any],
        limit: int,
        offset: int,
        one_pass: bool = False,
    ) -> Placed:
        """The page from every span of the range; conditions on totals sum only what they test.
        `one_pass`: every trace of the project is summed, in the aggregation that places it."""
        page = f"ORDER BY first DESC, trace_id LIMIT {int(limit)} OFFSET {int(offset)}"
        hits = f"SELECT trace_id, min(start_time) AS first FROM spans WHERE {where} GROUP BY trace_id"
        if not post:
            sql, all_params = f"{hits} {page}", params
        elif one_pass:
            totals = _totals(
                "spans s WHERE s.project_id = ?", first=f"min(s.start_time) FILTER (WHERE {where})"
            )
            sql = f"SELECT trace_id, first FROM ({totals}) WHERE first IS NOT NULL AND {post} {page}"
            all_params = [*params, project, *post_params]
        else:
            totals = _totals("spans s JOIN hits USING (trace_id) WHERE s.project_id = ?")
            sql = f"""
            WITH hits AS ({hits}), totals AS ({totals})
            SELECT trace_id, first FROM totals JOIN hits USING (trace_id) WHERE {post} {page}"""
            all_params = [*params, project, *post_params]
        return [
            (trace_id, first)
            for trace_id, first in cur.execute(
                f"SELECT trace_id, epoch_ns(first) FROM ({sql}) ORDER BY first DESC, trace_id", all_params
            ).fetchall()
        ]

    def _summaries(
        self, cur: duckdb.DuckDBPyConnection, project: str, page: Placed, hours: Hours
    ) -> pa.Table:
        """Each trace of the page summed whole (its spans outside the range too), among the hours
        it has spans in."""
        trace_ids = [trace_id for trace_id, _ in page]
        within, within_params = within_hours(hours, trace_ids)
        sql = f"""
        WITH chosen AS (SELECT unnest(?::VARCHAR[]) AS trace_id, unnest(?::BIGINT[]) AS first),
        t AS (
            SELECT s.trace_id, any_value(chosen.first) AS first,
                min(s.start_time) AS start_time,
                max(s.end_time) AS end_time,
                {_DURATION} AS duration_ms,
                count(*) AS spans,
                coalesce(arg_min(s.name, s.start_time) FILTER (WHERE s.parent_span_id = ''),
                         arg_min(s.name, s.start_time)) AS root_name,
                {_STATUS} AS status,
                list(DISTINCT s.error_type ORDER BY s.error_type)
                    FILTER (WHERE s.error_type IS NOT NULL) AS error_types,
                list(DISTINCT coalesce(s.response_model, s.request_model)
                     ORDER BY coalesce(s.response_model, s.request_model))
                    FILTER (WHERE coalesce(s.response_model, s.request_model) IS NOT NULL) AS models,
                count(*) FILTER (WHERE s.operation IN {LLM_OPERATIONS_SQL} AND {_COUNTED}) AS llm_calls,
                sum(s.input_tokens) FILTER (WHERE {_COUNTED})::BIGINT AS input_tokens,
                sum(s.output_tokens) FILTER (WHERE {_COUNTED})::BIGINT AS output_tokens,
                sum(s.total_tokens) FILTER (WHERE {_COUNTED})::BIGINT AS total_tokens,
                sum(s.cost_usd) FILTER (WHERE {_COUNTED}) AS cost_usd,
                count(*) FILTER (WHERE s.cost_known = false AND {_COUNTED}) AS unpriced_spans,
                arg_min(s.user_id, s.start_time) FILTER (WHERE s.user_id IS NOT NULL) AS user_id,
                arg_min(s.session_id, s.start_time) FILTER (WHERE s.session_id IS NOT NULL) AS session_id,
                arg_min(s.tenant_id, s.start_time) FILTER (WHERE s.tenant_id IS NOT NULL) AS tenant_id,
                arg_min(s.feature, s.start_time) FILTER (WHERE s.feature IS NOT NULL) AS feature,
                arg_min(s.service_name, s.start_time) AS service_name
            FROM spans s JOIN chosen USING (trace_id)
            WHERE s.project_id = ? AND {within}
            GROUP BY s.trace_id
        )
        SELECT * EXCLUDE (first) FROM t ORDER BY first DESC, trace_id
        """
        params = [trace_ids, [first for _, first in page], project, *within_params]
        return cur.sql(sql, params=params).to_arrow_table()
