"""DuckDB's tail sampling by retention: judging traces against a SamplingPolicy, and dropping
the detail of those not kept (their counted LLM calls stay in sampled_calls, for triage).

Nothing waits in memory for a decision: every span is stored at once, and a trace is judged
from the store once its newest span is `policy.recent` old (or once it has been open
`policy.max_open`), whole, with the scores and alerts that arrived meanwhile. Kept traces are
listed in retained_traces and never judged again; the others lose their spans and content, and
their numbers move into rollup rows marked sampled_out first, so totals never change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import FROM_SPANS, SAMPLED_CALL_FIELDS
from tokentrace.store.duckdb import rollups
from tokentrace.store.duckdb.connection import naive
from tokentrace.store.rollups import Change
from tokentrace.store.sampling import SamplingPolicy, base_rate_test, keep_case, score_clause
from tokentrace.store.sql import LLM_CALL

# One row per trace of the population: whether it is judged now (the sampler's candidates, or
# every trace when simulating), and the numbers the policy tests.
_TRACES = """
traces AS (
    SELECT s.trace_id,
        bool_or(p.candidate) AS candidate,
        count(*) AS spans,
        min(s.start_time) AS started,
        max(s.start_time) AS last_start,
        bool_or(s.status = 'error') AS has_error,
        coalesce(sum(s.cost_usd) FILTER (WHERE s.duplicate_of IS NULL), 0)::DOUBLE AS cost_usd,
        (epoch_ns(max(s.end_time)) - epoch_ns(min(s.start_time))) / 1e6 AS duration_ms,
        coalesce(arg_min(s.name, s.start_time) FILTER (WHERE s.parent_span_id = ''),
                 arg_min(s.name, s.start_time)) AS root_name,
        list(DISTINCT s.tenant_id) FILTER (WHERE s.tenant_id IS NOT NULL) AS tenants,
        list(DISTINCT s.user_id) FILTER (WHERE s.user_id IS NOT NULL) AS users,
        sum(strlen(coalesce(s.attributes, '')) + strlen(coalesce(s.resource, '')))::BIGINT
            AS text_bytes
    FROM spans s JOIN (SELECT trace_id, bool_or(candidate) AS candidate FROM population GROUP BY ALL) p
        USING (trace_id)
    WHERE s.project_id = $project
    GROUP BY s.trace_id
)"""

# The sampler's population: undecided traces with a span before the horizon (the candidates),
# plus the traces of the hour after it, whose durations (all still stored) make the percentile
# a candidate is compared with representative whatever the sweep's size.
_SWEEP_POPULATION = """
population AS (
    SELECT DISTINCT trace_id, true AS candidate FROM spans
    WHERE project_id = $project AND start_time < $horizon
      AND (trace_id NOT IN (SELECT trace_id FROM retained_traces WHERE project_id = $project)
           OR trace_id IN (SELECT trace_id FROM expired))
    UNION ALL
    SELECT DISTINCT trace_id, false FROM spans
    WHERE project_id = $project AND start_time >= $horizon AND start_time < $horizon + INTERVAL 1 HOUR
)"""
# A candidate is judged when its spans all lie before the horizon and before every rollup mark
# (so its numbers are in the rollups), or it has been open max_open.
_SWEEP_JUDGED = (
    "t.candidate AND t.last_start < $marked AND (t.last_start < $horizon OR t.started < $open_limit)"
)

# Kept traces whose newest span is older than the policy's keep_for: dropped now.
_EXPIRED = """
expired AS (
    SELECT trace_id FROM spans
    WHERE project_id = $project AND start_time < $horizon
      AND trace_id IN (SELECT trace_id FROM retained_traces WHERE project_id = $project)
    GROUP BY trace_id HAVING max(start_time) < $expire_before
)"""
_NONE_EXPIRED = "expired AS (SELECT NULL::VARCHAR AS trace_id WHERE false)"

# What triage reads of the dropped traces' counted LLM calls, kept as their spans go.
_KEEP_CALLS = f"""
INSERT INTO sampled_calls ({", ".join(SAMPLED_CALL_FIELDS)})
SELECT {", ".join(SAMPLED_CALL_FIELDS)} FROM spans
WHERE project_id = ? AND trace_id IN (SELECT trace_id FROM sampled_out_traces)
  AND {LLM_CALL} AND duplicate_of IS NULL
"""

_SIMULATE_POPULATION = """
population AS (
    SELECT DISTINCT trace_id, true AS candidate FROM spans
    WHERE project_id = $project AND start_time >= $since AND start_time < $until
)"""


def _verdicts_sql(
    policy: SamplingPolicy, population: str, judged: str, expired: str = _NONE_EXPIRED
) -> tuple[str, dict[str, Any]]:
    scored, params = score_clause(policy.keep_scores, lambda name, _text: f"${name}")
    slow = policy.keep_slower_than_percentile
    case, used = keep_case(
        policy,
        {
            "error": "t.has_error",
            "cost": "t.cost_usd > $cost",
            "slow": "t.duration_ms > slow.threshold",
            "score": "t.trace_id IN (SELECT trace_id FROM scored)",
            "alert": "t.trace_id IN (SELECT trace_id FROM alerted)",
            "tenant": "list_has_any(t.tenants, $tenants::VARCHAR[])",
            "user": "list_has_any(t.users, $users::VARCHAR[])",
            "base_rate": base_rate_test(
                policy.base_rate, "try_cast('0x' || right(t.trace_id, 16) AS UBIGINT)"
            ),
        },
    )
    params |= used
    if slow is not None:  # over the traces being judged, not those whose detail expires
        slowest = (
            f"SELECT root_name, quantile_cont(duration_ms, {slow / 100!r}) AS threshold "
            "FROM traces WHERE trace_id NOT IN (SELECT trace_id FROM expired) GROUP BY ALL"
        )
    else:  # no percentile to compute
        slowest = "SELECT NULL::VARCHAR AS root_name, NULL::DOUBLE AS threshold WHERE false"
    sql = f"""
WITH {expired},
{population},
{_TRACES},
slow AS ({slowest}),
scored AS (SELECT DISTINCT trace_id FROM scores WHERE project_id = $project AND ({scored})),
alerted AS (
    SELECT DISTINCT unnest(json_extract_string(payload, '$.triage.causes[*].example_trace_ids[*]'))
        AS trace_id
    FROM alert_events WHERE project_id = $project AND status = 'firing'
),
judged AS (SELECT t.* FROM traces t WHERE {judged}),
content_bytes AS (
    SELECT trace_id, sum(strlen(coalesce(system_instructions, ''))
        + strlen(coalesce(input_messages, '')) + strlen(coalesce(output_messages, ''))
        + strlen(coalesce(events, '')))::BIGINT AS bytes
    FROM content WHERE project_id = $project AND trace_id IN (SELECT trace_id FROM judged)
    GROUP BY ALL
)
SELECT t.trace_id, t.started, t.spans, t.has_error, t.cost_usd, t.duration_ms, t.root_name,
    t.text_bytes + coalesce(c.bytes, 0) AS detail_bytes,
    CASE WHEN t.trace_id IN (SELECT trace_id FROM expired) THEN NULL {case} END AS kept_because,
    t.trace_id IN (SELECT trace_id FROM expired) AS expired
FROM judged t LEFT JOIN slow USING (root_name) LEFT JOIN content_bytes c USING (trace_id)
"""
    return sql, params


def simulate(
    cur: duckdb.DuckDBPyConnection, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
) -> pa.Table:
    """Each trace with a span in [since, until) (naive UTC) as the policy would judge it now."""
    sql, params = _verdicts_sql(policy, _SIMULATE_POPULATION, "t.candidate")
    params |= {"project": project_id, "since": since, "until": until}
    return cur.sql(sql, params=params).to_arrow_table()


def sweep(
    cur: duckdb.DuckDBPyConnection,
    project_id: str,
    policy: SamplingPolicy,
    now: datetime,
    marks: dict[str, datetime],
) -> pa.Table:
    """Judge the traces due (see _SWEEP_JUDGED), list the kept ones and drop the detail of the
    others and of the kept traces past `keep_for` (`expired`), their numbers moved into
    sampled_out rollup rows first; the verdicts. The caller holds the transaction; `marks` are
    every rollup table's (naive UTC)."""
    expired = _EXPIRED if policy.keep_for is not None else _NONE_EXPIRED
    sql, params = _verdicts_sql(policy, _SWEEP_POPULATION, _SWEEP_JUDGED, expired)
    if policy.keep_for is not None:
        params["expire_before"] = now - policy.keep_for
    params |= {
        "project": project_id,
        "horizon": now - policy.recent,
        # None (nothing judged) until every table rolled up from spans has a mark
        "marked": min(marks[g.table] for g in FROM_SPANS)
        if all(g.table in marks for g in FROM_SPANS)
        else None,
        "open_limit": now - policy.max_open,
    }
    verdicts = cur.sql(sql, params=params).to_arrow_table()
    if not verdicts.num_rows:
        return verdicts
    kept = verdicts.filter(pc.is_valid(verdicts["kept_because"]))
    cur.register("kept_traces", kept.select(["trace_id", "kept_because"]))
    try:
        cur.execute(
            "INSERT OR IGNORE INTO retained_traces SELECT ?, trace_id, kept_because, ? FROM kept_traces",
            [project_id, now],
        )
    finally:
        cur.unregister("kept_traces")
    dropped = verdicts.filter(pc.is_null(verdicts["kept_because"])).select(["trace_id"])
    if dropped.num_rows:
        cur.register("sampled_out_traces", dropped)
        try:
            rollups.freeze(cur, project_id, marks)
            # The buckets the dropped spans leave (a minute and a user are all a recompute needs).
            changed = cur.execute(
                "SELECT DISTINCT project_id, date_trunc('minute', start_time)::TIMESTAMP, user_id, false "
                "FROM spans WHERE project_id = ? AND trace_id IN (SELECT trace_id FROM sampled_out_traces)",
                [project_id],
            ).fetchall()
            cur.execute(_KEEP_CALLS, [project_id])
            cur.execute(
                "DELETE FROM spans WHERE project_id = ? "
                "AND trace_id IN (SELECT trace_id FROM sampled_out_traces)",
                [project_id],
            )
            # (kept traces listed in retained_traces expire)
            for table in ("content", "retained_traces", "inherit_waiting"):
                cur.execute(
                    f"DELETE FROM {table} WHERE project_id = ? "
                    "AND trace_id IN (SELECT trace_id FROM sampled_out_traces)",
                    [project_id],
                )
        finally:
            cur.unregister("sampled_out_traces")
        rollups.recompute(cur, map(Change._make, changed), marks)
    return verdicts


class DuckDBSampling:
    """Sampling: verdicts, and the policies set through the API."""

    def apply_sampling(self, project_id: str, policy: SamplingPolicy, now: datetime) -> pa.Table:
        with self._vacuuming(), self._transaction() as cur:
            verdicts = sweep(cur, project_id, policy, naive(now), self._marks)
        return verdicts

    def simulate_sampling(
        self, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
    ) -> pa.Table:
        with self._conn.cursor() as cur:
            return simulate(cur, project_id, policy, naive(since), naive(until))

    def put_sampling_policy(self, project_id: str, spec: str | None) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            if spec is None:
                self._writer.execute("DELETE FROM sampling_policies WHERE project_id = ?", [project_id])
            else:
                self._writer.execute(
                    "INSERT OR REPLACE INTO sampling_policies VALUES (?, ?, ?)", [project_id, spec, now]
                )

    def sampling_policies(self) -> dict[str, str]:
        with self._conn.cursor() as cur:
            return dict(cur.execute("SELECT project_id, spec FROM sampling_policies").fetchall())

    def retained_because(self, project_id: str, trace_id: str) -> str | None:
        with self._conn.cursor() as cur:
            row = cur.execute(
                "SELECT reason FROM retained_traces WHERE project_id = ? AND trace_id = ?",
                [project_id, trace_id],
            ).fetchone()
        return row[0] if row else None
