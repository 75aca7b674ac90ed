"""The scale-out store: ClickHouse, through a transport (store/clickhouse_transport.py: chDB
in-process, or a server over HTTP).

Every Store method, tested on chDB against DuckDB's answers or in the both-store tests
(tests/store/, tests/query/), and the server over it end to end
(tests/e2e/test_clickhouse_server.py). Tail sampling: store/clickhouse_sampling.py.

ClickHouse has no transactions and no cheap UPDATE: a write is idempotent instead (identities
already stored are skipped, so replaying a spool is safe), and a span's later revision is a new
row with a higher `revision` that ReplacingMergeTree keeps alone; every read says FINAL.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import (
    ERROR_TYPES,
    FIELD_NAMES,
    GRAINS,
    GROUPABLE_FIELDS,
    INHERITED_FIELDS,
    LLM_OPERATIONS,
    MINUTE,
    SCORE_FIELD_NAMES,
    SPAN_SCHEMA,
    Grain,
    Tables,
)
from tokentrace.store import clickhouse_duplicates as dup
from tokentrace.store import clickhouse_rollups as rollups
from tokentrace.store import clickhouse_sampling as sampling
from tokentrace.store import duplicates
from tokentrace.store.base import (
    ALERT_STATE_FIELDS,
    DATED,
    UNDATED,
    Change,
    Project,
    SamplingPolicy,
    SpanFilter,
    TraceFilter,
)
from tokentrace.store.clickhouse_rollups import SETTINGS, time64
from tokentrace.store.clickhouse_transport import Transport
from tokentrace.store.migrations import migrations
from tokentrace.store.sql import LLM_CALL, input_bucket

_MEASURES = frozenset({"duration_ms", "ttft_ms", "tpot_ms"})
_HISTOGRAM_MEASURES = _MEASURES | {"input_tokens", "output_tokens"}
_SPANS = "spans FINAL"


_TAGS = ", ".join(INHERITED_FIELDS)
# Long agent runs aside, ancestors start within days of their descendants (as in DuckDB).
_WEEK_BEFORE = "{lo:DateTime64(9, 'UTC')} - INTERVAL 7 DAY"
# A span inherits each attribution tag it lacks (and its agent) from its nearest ancestor that
# has it, whatever order spans arrive in (store/duckdb.py's _INHERIT_TAGS, as ClickHouse SQL). The spans whose
# tags change come back whole with the inherited tags, to be written as a new revision.
_INHERIT_TAGS = f"""
WITH RECURSIVE
trace_spans AS (
    SELECT project_id, trace_id, span_id, parent_span_id, {_TAGS} FROM spans FINAL
    WHERE has({{traces:Array(String)}}, trace_id) AND start_time >= {_WEEK_BEFORE}
),
walk AS (
    SELECT project_id, trace_id, span_id AS key_span, parent_span_id AS next_id, 0 AS depth, {_TAGS}
    FROM trace_spans WHERE parent_span_id != '' AND ({" OR ".join(f"{t} IS NULL" for t in INHERITED_FIELDS)})
    UNION ALL
    SELECT w.project_id, w.trace_id, w.key_span, p.parent_span_id, w.depth + 1,
        {", ".join(f"coalesce(w.{t}, p.{t}) AS {t}" for t in INHERITED_FIELDS)}
    FROM walk AS w INNER JOIN trace_spans AS p
        ON p.project_id = w.project_id AND p.trace_id = w.trace_id AND p.span_id = w.next_id
    WHERE w.depth < 256
),
found AS (
    SELECT project_id, trace_id, key_span AS span_id,
        {", ".join(f"argMax({t}, depth) AS found_{t}" for t in INHERITED_FIELDS)}
    FROM walk GROUP BY project_id, trace_id, key_span
)
SELECT {", ".join(f"found_{n} AS {n}" if n in INHERITED_FIELDS else f"s.{n} AS {n}" for n in FIELD_NAMES)}
FROM spans AS s FINAL
INNER JOIN found AS f ON s.project_id = f.project_id AND s.trace_id = f.trace_id AND s.span_id = f.span_id
WHERE has({{traces:Array(String)}}, s.trace_id) AND s.start_time >= {_WEEK_BEFORE}
  AND ({
    " OR ".join(f"((s.{t} IS NULL) != (found_{t} IS NULL) OR s.{t} != found_{t})" for t in INHERITED_FIELDS)
})
"""


_ALERT_TIMES = ("active_since", "fired_at", "resolved_at", "evaluated_at")


def _utc_times(row: dict[str, Any]) -> dict[str, Any]:
    """Times as DuckDB's store gives them: aware UTC."""
    for name, value in row.items():
        if isinstance(value, datetime):
            row[name] = value.astimezone(UTC)
    return row


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _start_bounds(spans: pa.Table) -> tuple[datetime, datetime]:
    """The first and last start time of a batch, to the microsecond parameters carry: the
    first rounded down, the last up."""
    bounds = pc.min_max(spans["start_time"].cast(pa.int64()))
    low, high = bounds["min"].as_py() // 1000, -(-bounds["max"].as_py() // 1000)
    return _EPOCH + timedelta(microseconds=low), _EPOCH + timedelta(microseconds=high)


def _column(name: str, allowed: frozenset[str] | tuple[str, ...]) -> str:
    if name not in allowed:
        raise ValueError(f"unknown field {name!r}")
    return name


def _field(name: str) -> str:
    """A groupable or filterable field's expression: its column or `input_bucket`'s CASE."""
    if name == "input_bucket":
        return input_bucket()
    return _column(name, FIELD_NAMES)


def _where(f: SpanFilter) -> tuple[str, dict[str, Any]]:
    clauses, params = ["project_id = {project:String}"], {"project": f.project_id}
    if f.since is not None:
        clauses.append("start_time >= {since:DateTime64(9, 'UTC')}")
        params["since"] = time64(f.since)
    if f.until is not None:
        clauses.append("start_time < {until:DateTime64(9, 'UTC')}")
        params["until"] = time64(f.until)
    for n, (name, value) in enumerate(f.equals.items()):
        if value is None:
            clauses.append(f"{_field(name)} IS NULL")
        else:
            clauses.append(f"{_field(name)} = {{eq{n}:String}}")
            params[f"eq{n}"] = str(value)
    if f.name_contains:
        clauses.append("positionCaseInsensitiveUTF8(coalesce(name, ''), {name:String}) > 0")
        params["name"] = f.name_contains
    return " AND ".join(clauses), params


def _groups(group_by: tuple[str, ...], bucket_seconds: int | None) -> list[str]:
    groups = [f"{_field(_column(g, GROUPABLE_FIELDS))} AS {g}" for g in group_by]
    if bucket_seconds is not None:
        groups.insert(0, rollups.bucket("start_time", bucket_seconds))
    return groups


class ClickHouseStore:
    """Store implementation over ClickHouse (see the module's docstring)."""

    def __init__(self, transport: Transport, node: str | None = None) -> None:
        self._ch = transport
        # Each ingest process has its own spool; its position is kept under its name.
        self.node = node or socket.gethostname()
        self._migrate()
        self._marks = rollups.marks(transport)
        self._lag: timedelta | None = None  # how far behind the clock this node rolls up
        self._sweeping = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------
    def _migrate(self) -> None:
        self._ch.command(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
            "applied_at DateTime64(6, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version"
        )
        applied = set(self._ch.query("SELECT version FROM schema_migrations FINAL")["version"].to_pylist())
        for version, name, sql in migrations("clickhouse"):
            if version in applied:
                continue
            # No transactions: every statement is IF NOT EXISTS or guarded, so a migration cut
            # short runs again whole.
            for statement in _statements(sql):
                self._ch.command(statement)
            self._ch.command(
                "INSERT INTO schema_migrations VALUES ({v:UInt32}, {n:String}, now64(6))",
                {"v": version, "n": name},
            )

    def schema_version(self) -> int:
        return int(self._ch.query("SELECT max(version) AS v FROM schema_migrations")["v"][0].as_py())

    def close(self) -> None:
        self._ch.close()

    # --- writes ------------------------------------------------------------------------
    def spool_position(self) -> tuple[int, int] | None:
        rows = self._ch.query(
            "SELECT segment, offset FROM spool_positions FINAL WHERE node = {node:String}",
            {"node": self.node},
        ).to_pylist()
        return (rows[0]["segment"], rows[0]["offset"]) if rows else None

    def write_batch(self, tables: Tables, spool_position: tuple[int, int] | None) -> int:
        """Store the spans whose identity is not stored yet (so a batch sent again, or a
        spool replayed, adds nothing), their content and scores; how many spans were new."""
        new = 0
        spans = tables.spans
        if spans.num_rows:
            spans = self._unseen(spans)
            new = spans.num_rows
            if new:
                self._insert_spans(spans)
                inherited = self._inherit_tags(spans)
                revised, lent = self._mark_duplicates(spans)
                self._recompute_late(
                    [
                        (spans, False),
                        (inherited, True),
                        (revised.filter(lent), True),
                        (revised.filter(pc.invert(lent)), False),
                    ]
                )
        if tables.content.num_rows:
            revision = pa.array([time.time_ns()] * tables.content.num_rows, pa.uint64())
            self._ch.insert("content_parts", tables.content.append_column("revision", revision))
        if tables.scores.num_rows:
            self._ch.insert("scores", tables.scores)
        if spool_position is not None:  # after the data: a crash before it replays, harmlessly
            self._ch.command(
                "INSERT INTO spool_positions VALUES ({node:String}, {s:Int64}, {o:Int64}, {u:UInt64})",
                {"node": self.node, "s": spool_position[0], "o": spool_position[1], "u": time.time_ns()},
            )
        return new

    def update_costs(self, project_id: str, costs: pa.Table) -> int:
        """New prices for stored spans (trace_id, span_id, cost_usd, cost_known, attributes),
        each a newer revision; the buckets they fall in rolled up again."""
        if not costs.num_rows:
            return 0
        keys = pc.binary_join_element_wise(costs["trace_id"], costs["span_id"], ":")
        stored = self._ch.query(
            f"SELECT concat(trace_id, ':', span_id) AS key, {', '.join(FIELD_NAMES)} FROM {_SPANS} "
            "WHERE project_id = {project:String} AND has({traces:Array(String)}, trace_id) "
            "AND has({keys:Array(String)}, concat(trace_id, ':', span_id))",
            {
                "project": project_id,
                "traces": pc.unique(costs["trace_id"]).to_pylist(),
                "keys": keys.to_pylist(),
            },
        )
        if not stored.num_rows:
            return 0
        at = pc.index_in(stored["key"], keys)
        for name in ("cost_usd", "cost_known", "attributes"):
            values = pc.take(costs[name], at).cast(SPAN_SCHEMA.field(name).type)
            stored = stored.set_column(stored.schema.get_field_index(name), name, values)
        revised = stored.select(list(FIELD_NAMES)).cast(SPAN_SCHEMA)
        self._insert_spans(revised)
        self._recompute_late([(revised, False)])
        return revised.num_rows

    def _insert_spans(self, spans: pa.Table) -> None:
        revision = pa.array([time.time_ns()] * spans.num_rows, pa.uint64())
        self._ch.insert("spans", spans.append_column("revision", revision))

    def _inherit_tags(self, batch: pa.Table) -> pa.Table:
        """Write a new revision of every span of the batch's traces whose inherited tags
        changed; those spans."""
        first, _ = _start_bounds(batch)
        params = {"traces": pc.unique(batch["trace_id"]).to_pylist(), "lo": time64(first)}
        changed = self._ch.query(_INHERIT_TAGS + SETTINGS, params)
        if changed.num_rows:
            self._insert_spans(changed.cast(SPAN_SCHEMA))
        return changed

    def _mark_duplicates(self, batch: pa.Table) -> tuple[pa.Table, pa.Array]:
        """Set duplicate_of on the LLM spans that record a provider call another span counts
        (store/duplicates.py decides), lending the counted span the tags only its duplicates
        carry, each as a newer revision; the revised spans, and for each whether its tags changed."""
        nothing = (SPAN_SCHEMA.empty_table(), pa.array([], pa.bool_()))
        llm = batch.filter(
            pc.and_(pc.is_in(batch["operation"], pa.array(LLM_OPERATIONS)), pc.is_valid(batch["provider"]))
        )
        if not llm.num_rows:
            return nothing
        first, last = _start_bounds(llm)
        # Spans of one call start within a day of each other.
        window = {"lo": time64(first - timedelta(days=1)), "hi": time64(last + timedelta(days=1))}
        params = {
            "traces": pc.unique(llm["trace_id"]).to_pylist(),
            "responses": pc.unique(llm["response_id"].drop_null()).to_pylist(),
            "usage": sorted(
                {
                    (
                        r["provider"],
                        r["input_tokens"],
                        -1 if r["output_tokens"] is None else r["output_tokens"],
                    )
                    for r in llm.select(["provider", "input_tokens", "output_tokens"]).to_pylist()
                    if r["input_tokens"] is not None
                }
            ),
            **window,
        }
        found = self._ch.query(dup.CANDIDATES + SETTINGS, params)
        if found.num_rows < 2:
            return nothing
        resolution = duplicates.resolve(dup.candidates(found))
        keys = {*resolution.changes, *resolution.counted_by, *resolution.counted_by.values()}
        if not keys:
            return nothing
        involved = self._ch.query(dup.INVOLVED + SETTINGS, {"keys": sorted(keys), **window})
        revised, lent = dup.revised(involved, resolution)
        if revised is None:
            return nothing
        revised = revised.cast(SPAN_SCHEMA)
        self._insert_spans(revised)
        return revised, pa.array(lent, pa.bool_())

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
                Change(r["project_id"], r["start_time"], r["user_id"], tags_changed) for r in late.to_pylist()
            ]
        if changes:
            rollups.recompute(self._ch, changes, found)

    def _marks_for_writes(self) -> dict[str, datetime]:
        """The marks a write's late spans are measured against, read after the spans are in:
        other ingest nodes advance them too. Also this node's own next advance (as far behind
        the clock as its last one): a node whose roll-up read the spans just before this write
        may not have written its mark yet, and this node rolls the bucket up again after it."""
        self._marks = found = rollups.marks(self._ch)
        if self._lag is None:
            return found
        horizon = datetime.now(UTC).replace(tzinfo=None) - self._lag
        return {g.table: max(found.get(g.table, datetime.min), g.floor(horizon)) for g in GRAINS}

    def advance_rollups(self, until: datetime) -> datetime:
        self._lag = datetime.now(UTC) - until  # before flooring: the writer's lag itself
        until = until.astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
        self._marks = rollups.advance(self._ch, until)
        return self._marks[MINUTE.table].replace(tzinfo=UTC)

    def rolled_up_until(self, grain: Grain = MINUTE) -> datetime | None:
        mark = self._marks.get(grain.table)
        return mark.replace(tzinfo=UTC) if mark is not None else None

    def rollup_aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, grain: Grain = MINUTE
    ) -> pa.Table:
        sql, params = rollups.aggregate_sql(f, group_by, bucket_seconds, grain)
        return self._ch.query(sql, params)

    def sketch(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        measure: str,
        bucket_seconds: int | None,
        from_rollups: bool,
    ) -> pa.Table:
        spans_where = None if from_rollups else _where(f)
        sql, params = rollups.sketch_sql(f, group_by, measure, bucket_seconds, from_rollups, spans_where)
        return self._ch.query(sql, params)

    def _unseen(self, spans: pa.Table) -> pa.Table:
        """The batch's spans without the identities already stored, and each once."""
        keys = pc.binary_join_element_wise(spans["project_id"], spans["trace_id"], spans["span_id"], ":")
        first = pc.equal(pc.index_in(keys, keys), pa.array(range(spans.num_rows), pa.int32()))
        spans, keys = spans.filter(first), keys.filter(first)
        first, last = _start_bounds(spans)
        # A span's identity includes its start time in the sort key, so the lookup reads only
        # the batch's hours.
        stored = self._ch.query(
            "SELECT concat(project_id, ':', trace_id, ':', span_id) AS key FROM spans "
            "WHERE start_time >= {lo:DateTime64(9, 'UTC')} AND start_time <= {hi:DateTime64(9, 'UTC')} "
            "AND has({traces:Array(String)}, trace_id)",
            {
                "lo": time64(first),
                "hi": time64(last),
                "traces": pc.unique(spans["trace_id"]).to_pylist(),
            },
        )["key"]
        if not len(stored):
            return spans
        return spans.filter(pc.invert(pc.is_in(keys, stored)))

    # --- projects and settings -----------------------------------------------------------
    def _delete(self, table: str, where: str, params: dict[str, Any]) -> int:
        """Count, then lightweight-DELETE, the rows of `table` that `where` selects."""
        table = "content_parts" if table == "content" else table
        found = self._ch.query(f"SELECT count() AS n FROM {table} WHERE {where}", params).to_pylist()[0]["n"]
        if found:
            self._ch.command(f"DELETE FROM {table} WHERE {where}", params)
        return int(found)

    def delete_before(self, cutoff: datetime) -> dict[str, int]:
        # Spans first: a read between two DELETEs may see rollups reach back further than the
        # spans (totals from rollups stay whole meanwhile), never spans without their rollups.
        params = {"c": time64(cutoff)}
        return {t: self._delete(t, f"{column} < {{c:DateTime64(9)}}", params) for t, column in DATED}

    def delete_project(self, project_id: str) -> dict[str, int]:
        tables = (*(t for t, _ in DATED), *UNDATED)
        return {table: self._delete(table, "project_id = {p:String}", {"p": project_id}) for table in tables}

    def create_project(self, project_id: str, key_hash: str) -> None:
        self._ch.command("INSERT INTO projects VALUES ({p:String}, now64(6))", {"p": project_id})
        self.add_key(project_id, key_hash)

    def add_key(self, project_id: str, key_hash: str) -> None:
        self._ch.command(
            "INSERT INTO api_keys VALUES ({k:String}, {p:String}, now64(6))", {"k": key_hash, "p": project_id}
        )

    def project_for_key(self, key_hash: str) -> str | None:
        rows = self._ch.query(
            "SELECT project_id FROM api_keys FINAL WHERE key_hash = {k:String}", {"k": key_hash}
        ).to_pylist()
        return rows[0]["project_id"] if rows else None

    def projects(self) -> list[Project]:
        rows = self._ch.query(
            "SELECT project_id, created_at FROM projects FINAL ORDER BY project_id"
        ).to_pylist()
        return [Project(r["project_id"], r["created_at"].astimezone(UTC)) for r in rows]

    def put_alert_rule(self, project_id: str, name: str, spec: str) -> None:
        self._put_rule(project_id, name, spec, deleted=False)

    def delete_alert_rule(self, project_id: str, name: str) -> bool:
        found = any(r[1] == name for r in self.alert_rules(project_id))
        if found:
            self._put_rule(project_id, name, "", deleted=True)
        return found

    def _put_rule(self, project_id: str, name: str, spec: str, deleted: bool) -> None:
        self._ch.command(
            "INSERT INTO alert_rules VALUES ({p:String}, {n:String}, {s:String}, {d:Bool}, {u:UInt64})",
            {"p": project_id, "n": name, "s": spec, "d": deleted, "u": time.time_ns()},
        )

    def alert_rules(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        where = "AND project_id = {p:String}" if project_id is not None else ""
        rows = self._ch.query(
            f"SELECT project_id, name, spec FROM alert_rules FINAL WHERE NOT deleted {where} ORDER BY 1, 2",
            {"p": project_id} if project_id is not None else None,
        ).to_pylist()
        return [(r["project_id"], r["name"], r["spec"]) for r in rows]

    def alert_states(self, project_id: str) -> list[dict[str, Any]]:
        rows = self._ch.query(
            f"SELECT {', '.join(ALERT_STATE_FIELDS)} FROM alert_states FINAL "
            "WHERE project_id = {p:String} AND NOT cleared ORDER BY rule, group_key",
            {"p": project_id},
        ).to_pylist()
        return [_utc_times(r) for r in rows]

    def save_alert_evaluation(
        self,
        project_id: str,
        states: list[dict[str, Any]],
        cleared: list[tuple[str, str]],
        events: list[dict[str, Any]],
    ) -> None:
        """Events first, then states: without a transaction, a crash between them repeats a
        notification at the next evaluation rather than losing it."""
        now = time.time_ns()
        if events:
            self._ch.insert(
                "alert_events",
                pa.table(
                    {
                        "event_id": [e["event_id"] for e in events],
                        "project_id": [project_id] * len(events),
                        "rule": [e["rule"] for e in events],
                        "group_key": [e["group_key"] for e in events],
                        "status": [e["status"] for e in events],
                        "created_at": pa.array([e["at"] for e in events], pa.timestamp("us", tz="UTC")),
                        "payload": [orjson.dumps(e["payload"]).decode() for e in events],
                        "attempts": pa.array([0] * len(events), pa.uint32()),
                        "updated": pa.array([now] * len(events), pa.uint64()),
                    }
                ),
            )
        rows = [{**{k: state[k] for k in ALERT_STATE_FIELDS}, "cleared": False} for state in states]
        rows += [
            {
                "rule": rule,
                "group_key": key,
                "status": "cleared",
                "evaluated_at": datetime.now(UTC),
                "cleared": True,
            }
            for rule, key in cleared
        ]
        if rows:
            times = pa.timestamp("us", tz="UTC")
            table = pa.table(
                {
                    "project_id": [project_id] * len(rows),
                    "rule": [r["rule"] for r in rows],
                    "group_key": [r["group_key"] for r in rows],
                    "status": [r["status"] for r in rows],
                    "value": pa.array([r.get("value") for r in rows], pa.float64()),
                    **{k: pa.array([r.get(k) for r in rows], times) for k in _ALERT_TIMES},
                    "cleared": [r["cleared"] for r in rows],
                    "updated": pa.array([now] * len(rows), pa.uint64()),
                }
            )
            self._ch.insert("alert_states", table)

    def alert_events(
        self, project_id: str | None = None, undelivered: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        clauses, params = ["true"], {}
        if project_id is not None:
            clauses.append("project_id = {p:String}")
            params["p"] = project_id
        if undelivered:
            clauses.append("delivered_at IS NULL")
        order = "created_at" if undelivered else "created_at DESC"
        rows = self._ch.query(
            "SELECT event_id, project_id, rule, group_key, status, created_at AS at, payload, "
            f"delivered_at, attempts, last_error FROM alert_events FINAL WHERE {' AND '.join(clauses)} "
            f"ORDER BY {order} LIMIT {int(limit)} {SETTINGS}",
            params,
        ).to_pylist()
        for row in rows:
            row["payload"] = orjson.loads(row["payload"])
            _utc_times(row)
        return rows

    def mark_alert_event(self, event_id: str, delivered: bool, error: str | None = None) -> None:
        # One evaluator delivers, so reading the row and writing its next version is safe.
        self._ch.command(
            "INSERT INTO alert_events SELECT event_id, project_id, rule, group_key, status, created_at, "
            "payload, if({d:Bool}, now64(6), delivered_at), attempts + 1, {e:Nullable(String)}, {u:UInt64} "
            "FROM alert_events FINAL WHERE event_id = {id:String}",
            {"d": delivered, "e": error, "u": time.time_ns(), "id": event_id},
        )

    def apply_sampling(self, project_id: str, policy: SamplingPolicy, now: datetime) -> pa.Table:
        with self._sweeping:  # the sampler's thread and the API's apply, one at a time
            return sampling.sweep(self._ch, project_id, policy, now, self._marks)

    def simulate_sampling(
        self, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
    ) -> pa.Table:
        return sampling.simulate(self._ch, project_id, policy, since, until)

    def put_sampling_policy(self, project_id: str, spec: str | None) -> None:
        self._ch.command(
            "INSERT INTO sampling_policies VALUES ({p:String}, {s:Nullable(String)}, {u:UInt64})",
            {"p": project_id, "s": spec, "u": time.time_ns()},
        )

    def sampling_policies(self) -> dict[str, str]:
        rows = self._ch.query("SELECT project_id, spec FROM sampling_policies FINAL WHERE spec IS NOT NULL")
        return {r["project_id"]: r["spec"] for r in rows.to_pylist()}

    def retained_because(self, project_id: str, trace_id: str) -> str | None:
        rows = self._ch.query(
            "SELECT reason FROM retained_traces FINAL "
            "WHERE project_id = {p:String} AND trace_id = {t:String}",
            {"p": project_id, "t": trace_id},
        ).to_pylist()
        return rows[0]["reason"] if rows else None

    # --- reads -------------------------------------------------------------------------
    def content(self, project_id: str, trace_id: str, span_id: str) -> dict[str, Any] | None:
        # Parts in arrival order: each message list from the first part that has it, events
        # from every part, a part sent again (an exporter's retry) counted once.
        rows = self._ch.query(
            "SELECT system_instructions, input_messages, output_messages, events FROM content_parts "
            "WHERE project_id = {p:String} AND trace_id = {t:String} AND span_id = {s:String} "
            "ORDER BY revision",
            {"p": project_id, "t": trace_id, "s": span_id},
        ).to_pylist()
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
        where, params = _where(f.spans)
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
        hits = f"SELECT trace_id, min(start_time) AS first FROM {_SPANS} WHERE {where} GROUP BY trace_id"
        if post:
            chosen = f"""
            SELECT trace_id, first FROM (
                SELECT trace_id, any(first) AS first, sumIf(cost_usd, {counted}) AS cost_usd,
                    {duration} AS duration_ms, {status} AS status
                FROM {_SPANS} INNER JOIN ({hits}) AS hits USING (trace_id)
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
                groupUniqArrayIf(assumeNotNull(error_type), error_type IS NOT NULL) AS error_types,
                groupUniqArrayIf(assumeNotNull(coalesce(response_model, request_model)),
                                 coalesce(response_model, request_model) IS NOT NULL) AS models,
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
            FROM {_SPANS} INNER JOIN ({chosen}) AS chosen USING (trace_id)
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
        where, params = _where(f)
        counted = "duplicate_of IS NULL"
        # As DuckDB's: the sessions most recently active in the filter, each summed whole.
        chosen = (
            f"SELECT session_id, max(start_time) AS last_active FROM {_SPANS} "
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
            FROM {_SPANS} INNER JOIN ({chosen}) AS chosen USING (session_id)
            WHERE project_id = {{project:String}}
            GROUP BY session_id
        ) ORDER BY last_active DESC, session_id {SETTINGS}
        """
        return self._ch.query(sql, params)

    def score_summary(self, f: SpanFilter, group_by: tuple[str, ...], name: str | None) -> pa.Table:
        groups = _groups(group_by, None)
        where, params = _where(f)
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
            INNER JOIN (SELECT {tags} FROM {_SPANS} WHERE {where}) AS sp
                ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
                AND sp.span_id = if(sc.span_id = '', sp.span_id, sc.span_id)
            WHERE sc.span_id != '' OR sp.parent_span_id = ''"""
        keys = ["name", "data_type", *rollups.names(groups)]
        sql = f"""
        SELECT {", ".join(keys)},
            count() AS scores, avg(value) AS mean, min(value) AS min, max(value) AS max,
            sumMapIf(map(assumeNotNull(string_value), toUInt64(1)), string_value IS NOT NULL) AS labels
        FROM ({scored}) GROUP BY {", ".join(keys)} ORDER BY name, scores DESC {SETTINGS}
        """
        return self._ch.query(sql, params)

    def scores(self, project_id: str, trace_id: str) -> pa.Table:
        return self._ch.query(
            f"SELECT {', '.join(SCORE_FIELD_NAMES)} FROM scores FINAL WHERE project_id = {{p:String}} "
            "AND trace_id = {t:String} ORDER BY created_at, score_id",
            {"p": project_id, "t": trace_id},
        )

    def histogram(
        self, f: SpanFilter, group_by: tuple[str, ...], measure: str, bounds: tuple[float, ...]
    ) -> pa.Table:
        groups = _groups(group_by, None)
        column = _column(measure, _HISTOGRAM_MEASURES)
        buckets = [f"countIf({column} <= {float(bound)!r}) AS le_{n}" for n, bound in enumerate(bounds)]
        where, params = _where(f)
        select = ", ".join(
            [*groups, f"count({column}) AS count", f"toFloat64(sum({column})) AS sum", *buckets]
        )
        sql = (
            f"SELECT {select} FROM {_SPANS} WHERE {where} AND {LLM_CALL} AND duplicate_of IS NULL "
            f"AND {column} IS NOT NULL {rollups.group_clause(groups)} {SETTINGS}"
        )
        return self._ch.query(sql, params)

    def export(self, f: SpanFilter, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        where, params = _where(f)
        table = self._ch.query(
            f"SELECT {', '.join(FIELD_NAMES)} FROM {_SPANS} WHERE {where} ORDER BY start_time, span_id",
            params,
        )
        yield from table.to_batches(max_chunksize=batch_rows)

    def trace_spans(self, project_id: str, trace_id: str) -> pa.Table:
        return self._ch.query(
            f"SELECT {', '.join(FIELD_NAMES)} FROM {_SPANS} WHERE project_id = {{project:String}} "
            "AND trace_id = {trace:String} ORDER BY start_time, span_id",
            {"project": project_id, "trace": trace_id},
        )

    def spans(self, f: SpanFilter, columns: tuple[str, ...], limit: int | None = None) -> pa.Table:
        select = ", ".join(_column(c, FIELD_NAMES) for c in columns)
        where, params = _where(f)
        sql = f"SELECT {select} FROM {_SPANS} WHERE {where} ORDER BY start_time"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._ch.query(sql, params)

    def totals(self, project_id: str) -> dict[str, Any]:
        row = self._ch.query(
            f"""
            SELECT count() AS spans, uniqExact(trace_id) AS traces,
                   sumIf(total_tokens, duplicate_of IS NULL) AS total_tokens,
                   sumIf(cost_usd, duplicate_of IS NULL) AS cost_usd,
                   countIf(cost_known = false AND duplicate_of IS NULL) AS unpriced_spans,
                   if(count() = 0, NULL, max(end_time)) AS last_span_end
            FROM {_SPANS} WHERE project_id = {{project:String}}
            {SETTINGS}
            """,
            {"project": project_id},
        ).to_pylist()[0]
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
        groups = _groups(group_by, bucket_seconds)
        where, params = _where(f)
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
        FROM {_SPANS}
        WHERE {where} AND duplicate_of IS NULL
        {rollups.group_clause(groups)})
        ORDER BY {"bucket" if bucket_seconds is not None else "cost_usd DESC"}
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
        groups = _groups(group_by, bucket_seconds)
        levels = ", ".join(repr(float(q)) for q in quantiles if 0 <= q <= 1)
        parts = []
        for m in measures:
            column = _column(m, _MEASURES)
            # quantilesExactInclusive interpolates between order statistics as DuckDB's
            # quantile_cont does; an empty group has NULL, not an empty array.
            parts.append(
                f"if(count({column}) = 0, NULL, quantilesExactInclusive({levels})({column})) AS {column}"
            )
            parts.append(f"count({column}) AS {column}_count")
        where, params = _where(f)
        select = ", ".join([*groups, "count() AS requests", *parts])
        order = "bucket" if bucket_seconds is not None else "requests DESC"
        sql = (
            f"SELECT * FROM (SELECT {select} FROM {_SPANS} WHERE {where} AND {LLM_CALL} "
            f"AND duplicate_of IS NULL {rollups.group_clause(groups)}) ORDER BY {order} {SETTINGS}"
        )
        return self._ch.query(sql, params)


def _statements(sql: str) -> list[str]:
    """A migration's statements: split at a `;` that ends a line, comments dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    statements = (s.strip().rstrip(";").strip() for s in "\n".join(lines).split(";\n"))
    return [s for s in statements if s]
