"""ClickHouse's tail sampling by retention: DuckDB's judging (store/duckdb/sampling.py), made
safe to cut short at any statement without transactions.

A sweep is a row of sampling_sweeps that moves open → committed → done:

- open: the traces it drops are listed in sampling_pending under its id; their numbers are
  frozen into sampled-out rollup rows, their LLM calls copied to sampled_calls and their
  buckets rolled up again without them, all under its id, rows that no read counts yet
  (rollups.VALID);
- committed: one INSERT of its state makes all of them count at once;
- done: the dropped traces' spans and content are deleted, then their list.

Meanwhile every other roll-up leaves the listed traces out (rollups.UNSETTLED), so
their numbers are never counted twice. The next sweep finishes one that died committed, and
abandons one that died open (its rows never count; its buckets are rolled up again).
One process sweeps at a time (the server that runs `--sampling`): docs/scale.md.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import FROM_SPANS, SAMPLED_CALL_FIELDS
from tokentrace.store.clickhouse import rollups
from tokentrace.store.clickhouse.dialect import time64
from tokentrace.store.clickhouse.rollups import SETTINGS, UNSETTLED
from tokentrace.store.clickhouse.transport import Transport
from tokentrace.store.python_rows import python_rows
from tokentrace.store.rollups import Change
from tokentrace.store.sampling import SamplingPolicy, base_rate_test, keep_case, score_clause
from tokentrace.store.sql import LLM_CALL

_TIME = "DateTime64(9, 'UTC')"

# One row per trace of the population (store/duckdb/sampling.py's _TRACES).
_TRACES = """
traces AS (
    SELECT s.trace_id AS trace_id,
        any(p.candidate) AS candidate,
        count() AS spans,
        min(s.start_time) AS started,
        max(s.start_time) AS last_start,
        countIf(s.status = 'error') > 0 AS has_error,
        toFloat64(sumIf(coalesce(s.cost_usd, 0), s.duplicate_of IS NULL)) AS cost_usd,
        (toUnixTimestamp64Nano(max(s.end_time)) - toUnixTimestamp64Nano(min(s.start_time))) / 1e6
            AS duration_ms,
        if(countIf(s.parent_span_id = '') > 0, argMinIf(s.name, s.start_time, s.parent_span_id = ''),
           argMin(s.name, s.start_time)) AS root_name,
        groupUniqArray(s.tenant_id) AS tenants,
        groupUniqArray(s.user_id) AS users,
        toInt64(sum(length(s.attributes) + length(s.resource))) AS text_bytes
    FROM spans AS s FINAL
    INNER JOIN (SELECT trace_id, max(candidate) AS candidate FROM population GROUP BY trace_id) AS p
        ON s.trace_id = p.trace_id
    WHERE s.project_id = {project:String}
    GROUP BY s.trace_id
)"""

# Undecided traces with a span before the horizon (those of an unfinished sweep are decided),
# plus the traces of the hour after it, for the percentile a candidate is compared with.
_SWEEP_POPULATION = f"""
population AS (
    SELECT DISTINCT trace_id, true AS candidate FROM spans
    WHERE project_id = {{project:String}} AND start_time < {{horizon:{_TIME}}}
      AND (trace_id NOT IN (SELECT trace_id FROM retained_traces FINAL WHERE project_id = {{project:String}})
           OR trace_id IN (SELECT trace_id FROM expired))
      AND trace_id NOT IN ({UNSETTLED})
    UNION ALL
    SELECT DISTINCT trace_id, false FROM spans
    WHERE project_id = {{project:String}} AND start_time >= {{horizon:{_TIME}}}
      AND start_time < {{horizon:{_TIME}}} + INTERVAL 1 HOUR
)"""
_SWEEP_JUDGED = (
    f"t.candidate AND t.last_start < {{marked:Nullable({_TIME})}} "
    f"AND (t.last_start < {{horizon:{_TIME}}} OR t.started < {{open_limit:{_TIME}}})"
)

# Kept traces whose newest span is older than the policy's keep_for: dropped now.
_EXPIRED = f"""
expired AS (
    SELECT trace_id FROM spans
    WHERE project_id = {{project:String}} AND start_time < {{horizon:{_TIME}}}
      AND trace_id IN (SELECT trace_id FROM retained_traces FINAL WHERE project_id = {{project:String}})
    GROUP BY trace_id HAVING max(start_time) < {{expire_before:{_TIME}}}
)"""
_NONE_EXPIRED = "expired AS (SELECT '' AS trace_id WHERE false)"

_SIMULATE_POPULATION = f"""
population AS (
    SELECT DISTINCT trace_id, true AS candidate FROM spans
    WHERE project_id = {{project:String}}
      AND start_time >= {{since:{_TIME}}} AND start_time < {{until:{_TIME}}}
)"""

# The verdicts as DuckDB's store gives them.
VERDICTS = pa.schema(
    [
        ("trace_id", pa.string()),
        ("started", pa.timestamp("us")),
        ("spans", pa.int64()),
        ("has_error", pa.bool_()),
        ("cost_usd", pa.float64()),
        ("duration_ms", pa.float64()),
        ("root_name", pa.string()),
        ("detail_bytes", pa.int64()),
        ("kept_because", pa.string()),
        ("expired", pa.bool_()),
    ]
)

# An open sweep younger than this may still be running in another process: left alone.
_STALE_NS = 3600 * 10**9


def _verdicts_sql(
    policy: SamplingPolicy, population: str, judged: str, expired: str = _NONE_EXPIRED
) -> tuple[str, dict[str, Any]]:
    scored, params = score_clause(
        policy.keep_scores, lambda name, text: f"{{{name}:{'String' if text else 'Float64'}}}"
    )
    slow = policy.keep_slower_than_percentile
    case, used = keep_case(
        policy,
        {
            "error": "t.has_error",
            "cost": "t.cost_usd > {cost:Float64}",
            "slow": "t.duration_ms > slow.threshold",
            "score": "t.trace_id IN (SELECT trace_id FROM scored)",
            "alert": "t.trace_id IN (SELECT trace_id FROM alerted)",
            "tenant": "hasAny(t.tenants, {tenants:Array(String)})",
            "user": "hasAny(t.users, {users:Array(String)})",
            "base_rate": base_rate_test(
                policy.base_rate, "reinterpretAsUInt64(reverse(unhex(right(t.trace_id, 16))))"
            ),
        },
    )
    params |= used
    # Nullable, so a trace whose root name has no threshold is not slow (a LEFT JOIN's
    # missing row is the type's default).
    threshold = f"toNullable(quantileExactInclusive({slow / 100!r})(duration_ms))" if slow else "NULL"
    sql = f"""
WITH {expired},
{population},
{_TRACES},
slow AS (
    SELECT root_name, {threshold} AS threshold FROM traces
    WHERE trace_id NOT IN (SELECT trace_id FROM expired) GROUP BY root_name
),
scored AS (SELECT trace_id FROM scores FINAL WHERE project_id = {{project:String}} AND ({scored})),
alerted AS (
    SELECT arrayJoin(arrayFlatten(arrayMap(c -> JSONExtract(c, 'example_trace_ids', 'Array(String)'),
        JSONExtractArrayRaw(payload, 'triage', 'causes')))) AS trace_id
    FROM alert_events FINAL WHERE project_id = {{project:String}} AND status = 'firing'
),
judged AS (SELECT t.* FROM traces AS t WHERE {judged}),
content_bytes AS (
    SELECT trace_id, toInt64(sum(length(coalesce(system_instructions, ''))
        + length(coalesce(input_messages, '')) + length(coalesce(output_messages, ''))
        + length(coalesce(events, '')))) AS bytes
    FROM content_parts WHERE project_id = {{project:String}} AND trace_id IN (SELECT trace_id FROM judged)
    GROUP BY trace_id
)
SELECT t.trace_id AS trace_id, t.started AS started, t.spans AS spans, t.has_error AS has_error,
    t.cost_usd AS cost_usd, t.duration_ms AS duration_ms, t.root_name AS root_name,
    t.text_bytes + c.bytes AS detail_bytes,
    CASE WHEN t.trace_id IN (SELECT trace_id FROM expired) THEN NULL {case} END AS kept_because,
    t.trace_id IN (SELECT trace_id FROM expired) AS expired
FROM judged AS t LEFT JOIN slow ON t.root_name = slow.root_name
LEFT JOIN content_bytes AS c ON t.trace_id = c.trace_id
{SETTINGS}
"""
    return sql, params


def _verdicts(ch: Transport, sql: str, params: dict[str, Any]) -> pa.Table:
    table = ch.query(sql, params)
    started = table["started"].cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us"))
    return table.set_column(table.schema.get_field_index("started"), "started", started).cast(VERDICTS)


def simulate(
    ch: Transport, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
) -> pa.Table:
    """Each trace with a span in [since, until) as the policy would judge it now."""
    sql, params = _verdicts_sql(policy, _SIMULATE_POPULATION, "t.candidate")
    params |= {"project": project_id, "since": time64(since), "until": time64(until)}
    return _verdicts(ch, sql, params)


def sweep(
    ch: Transport, project_id: str, policy: SamplingPolicy, now: datetime, marks: dict[str, datetime]
) -> pa.Table:
    """Judge the traces due (as DuckDB's sweep does), list the kept ones and drop the detail of
    the others and of the kept traces past `keep_for`, their numbers moved into sampled-out
    rollup rows; the verdicts. Nothing is
    judged while another sweep may be running."""
    if not _settle(ch, marks):
        return VERDICTS.empty_table()
    sweep_id = time.time_ns()
    _set_state(ch, project_id, sweep_id, "open")
    expired = _EXPIRED if policy.keep_for is not None else _NONE_EXPIRED
    sql, params = _verdicts_sql(policy, _SWEEP_POPULATION, _SWEEP_JUDGED, expired)
    if policy.keep_for is not None:
        params["expire_before"] = time64(now - policy.keep_for)
    every_mark = all(g.table in marks for g in FROM_SPANS)
    verdicts = _verdicts(
        ch,
        sql,
        params
        | {
            "project": project_id,
            "horizon": time64(now - policy.recent),
            # None (nothing judged) until every table rolled up from spans has a mark
            "marked": time64(min(marks[g.table] for g in FROM_SPANS)) if every_mark else None,
            "open_limit": time64(now - policy.max_open),
        },
    )
    kept = verdicts.filter(pc.is_valid(verdicts["kept_because"]))
    if kept.num_rows:
        ch.insert(
            "retained_traces",
            pa.table(
                {
                    "project_id": pa.array([project_id] * kept.num_rows, pa.string()),
                    "trace_id": kept["trace_id"],
                    "reason": kept["kept_because"],
                    "decided_at": pa.array([now] * kept.num_rows, pa.timestamp("us", tz="UTC")),
                }
            ),
        )
    dropped = verdicts.filter(pc.is_null(verdicts["kept_because"]))
    if dropped.num_rows:
        ch.insert(
            "sampling_pending",
            pa.table(
                {
                    "project_id": pa.array([project_id] * dropped.num_rows, pa.string()),
                    "sweep": pa.array([sweep_id] * dropped.num_rows, pa.uint64()),
                    "trace_id": dropped["trace_id"],
                }
            ),
        )
        ch.command(_KEEP_CALLS, {"p": project_id, "s": sweep_id})
        rollups.freeze(ch, project_id, marks, sweep_id)
        rollups.recompute(ch, _buckets_of(ch, project_id, sweep_id), marks, sweep=sweep_id)
        _set_state(ch, project_id, sweep_id, "committed")
        _finish(ch, project_id, sweep_id)
    else:
        _set_state(ch, project_id, sweep_id, "done")
    rollups.compact(ch, before=rollups.server_clock(ch))
    return verdicts


# What triage reads of the dropped traces' counted LLM calls, under the sweep's id: they count
# once it commits (rollups.VALID), when its traces' spans stop counting (rollups.COMMITTED).
_KEEP_CALLS = f"""
INSERT INTO sampled_calls ({", ".join(SAMPLED_CALL_FIELDS)}, sweep)
SELECT {", ".join(SAMPLED_CALL_FIELDS)}, {{s:UInt64}} FROM spans FINAL
WHERE project_id = {{p:String}} AND {LLM_CALL} AND duplicate_of IS NULL
  AND trace_id IN (SELECT trace_id FROM sampling_pending WHERE sweep = {{s:UInt64}})
"""


def _set_state(ch: Transport, project_id: str, sweep_id: int, state: str) -> None:
    ch.command(
        "INSERT INTO sampling_sweeps VALUES ({p:String}, {s:UInt64}, {state:String}, {u:UInt64})",
        {"p": project_id, "s": sweep_id, "state": state, "u": time.time_ns()},
    )


def _buckets_of(ch: Transport, project_id: str, sweep_id: int) -> list[Change]:
    """The minute and user of every span of the traces `sweep_id` lists."""
    rows = python_rows(
        ch.query(
            "SELECT DISTINCT project_id, toUnixTimestamp(toStartOfMinute(start_time)) AS minute, user_id "
            "FROM spans FINAL "
            "WHERE project_id = {p:String} "
            "AND trace_id IN (SELECT trace_id FROM sampling_pending WHERE sweep = {s:UInt64})",
            {"p": project_id, "s": sweep_id},
        )
    )
    return [
        Change(
            r["project_id"],
            datetime.fromtimestamp(r["minute"], UTC).replace(tzinfo=None),
            r["user_id"],
            False,
        )
        for r in rows
    ]


def _finish(ch: Transport, project_id: str, sweep_id: int) -> None:
    """Delete a committed sweep's dropped spans and content (and the kept traces' listing of
    those that expired), then its list (safe to repeat)."""
    listed = "trace_id IN (SELECT trace_id FROM sampling_pending WHERE sweep = {s:UInt64})"
    for table in ("spans", "content_parts", "retained_traces"):
        ch.command(
            f"DELETE FROM {table} WHERE project_id = {{p:String}} AND {listed}",
            {"p": project_id, "s": sweep_id},
        )
    _set_state(ch, project_id, sweep_id, "done")
    ch.command("DELETE FROM sampling_pending WHERE sweep = {s:UInt64}", {"s": sweep_id})


def _settle(ch: Transport, marks: dict[str, datetime]) -> bool:
    """Finish the sweeps a crash left committed and abandon those it left open; False while an
    open sweep is young enough to be running still."""
    unfinished = python_rows(
        ch.query(
            "SELECT project_id, sweep, state FROM sampling_sweeps FINAL WHERE state IN ('open', 'committed')"
        )
    )
    running = False
    for row in unfinished:
        if row["state"] == "committed":
            _finish(ch, row["project_id"], row["sweep"])
        elif time.time_ns() - row["sweep"] < _STALE_NS:
            running = True
        else:
            # Its traces count again from their spans: roll their buckets up again with them.
            _set_state(ch, row["project_id"], row["sweep"], "abandoned")
            rollups.recompute(ch, _buckets_of(ch, row["project_id"], row["sweep"]), marks)
            for table in ("sampled_calls", "sampling_pending"):
                ch.command(f"DELETE FROM {table} WHERE sweep = {{s:UInt64}}", {"s": row["sweep"]})
    return not running


class ClickHouseSampling:
    """Sampling: verdicts, and the policies set through the API."""

    def apply_sampling(self, project_id: str, policy: SamplingPolicy, now: datetime) -> pa.Table:
        with self._sweeping:  # the sampler's thread and the API's apply, one at a time
            return sweep(self._ch, project_id, policy, now, self._marks)

    def simulate_sampling(
        self, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
    ) -> pa.Table:
        return simulate(self._ch, project_id, policy, since, until)

    def put_sampling_policy(self, project_id: str, spec: str | None) -> None:
        self._ch.command(
            "INSERT INTO sampling_policies VALUES ({p:String}, {s:Nullable(String)}, {u:UInt64})",
            {"p": project_id, "s": spec, "u": time.time_ns()},
        )

    def sampling_policies(self) -> dict[str, str]:
        rows = self._ch.query("SELECT project_id, spec FROM sampling_policies FINAL WHERE spec IS NOT NULL")
        return {r["project_id"]: r["spec"] for r in python_rows(rows)}

    def retained_because(self, project_id: str, trace_id: str) -> str | None:
        rows = python_rows(
            self._ch.query(
                "SELECT reason FROM retained_traces FINAL "
                "WHERE project_id = {p:String} AND trace_id = {t:String}",
                {"p": project_id, "t": trace_id},
            )
        )
        return rows[0]["reason"] if rows else None
