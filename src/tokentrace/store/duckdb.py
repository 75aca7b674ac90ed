"""The embedded store: one DuckDB file, written by one batch writer, read through cursors.

One process owns the file (DuckDB allows no second process, even read-only), so ingest
and queries share it: writes are serialized under a lock, each read uses its own cursor.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace import semconv
from tokentrace.canonical import (
    ERROR_TYPES,
    FIELD_NAMES,
    GROUPABLE_FIELDS,
    INHERITED_FIELDS,
    MINUTE,
    SCORE_FIELD_NAMES,
    TAG_FIELDS,
    Grain,
    Tables,
)
from tokentrace.store import duckdb_rollups as rollups
from tokentrace.store import duckdb_sampling as sampling
from tokentrace.store import duplicates
from tokentrace.store.base import (
    ALERT_STATE_FIELDS,
    DATED,
    SCORE_OPERATORS,
    UNDATED,
    Change,
    Project,
    SamplingPolicy,
    ScoreCondition,
    SpanFilter,
    TraceFilter,
)
from tokentrace.store.migrations import migrations
from tokentrace.store.sql import LLM_CALL, LLM_OPERATIONS_SQL, PROVIDER_CALL, input_bucket

_SPAN_COLUMNS = ", ".join(FIELD_NAMES)
_MEASURES = frozenset({"duration_ms", "ttft_ms", "tpot_ms"})
_HISTOGRAM_MEASURES = _MEASURES | {"input_tokens", "output_tokens"}
_TAGS = ", ".join(INHERITED_FIELDS)
_ANY_TAG_MISSING = " OR ".join(f"{t} IS NULL" for t in INHERITED_FIELDS)

# A span inherits each attribution tag it lacks (and its agent) from its nearest ancestor that has it,
# whatever order the spans arrive in. Run after each insert over the traces the batch
# touched: walk up from every span missing a tag, keeping the first value met (coalesce).
# An inherited value is final: a span inherits only through a complete chain of ancestors.
_INHERIT_TAGS = f"""
UPDATE spans SET {", ".join(f"{t} = found.{t}" for t in INHERITED_FIELDS)}
FROM (
    WITH RECURSIVE
    touched AS (SELECT DISTINCT project_id, trace_id FROM batch_spans),
    trace_spans AS (
        SELECT s.span_key, s.project_id, s.trace_id, s.span_id, s.parent_span_id,
               {", ".join(f"s.{t}" for t in INHERITED_FIELDS)}
        FROM spans s SEMI JOIN touched USING (project_id, trace_id)
        -- long agent runs aside, ancestors start within days of their descendants; the bound
        -- lets zone maps skip old row groups
        WHERE s.start_time >= (SELECT min(start_time) FROM batch_spans) - INTERVAL 7 DAY
    ),
    walk AS (
        SELECT span_key, project_id, trace_id, parent_span_id AS next_id, 0 AS depth, {_TAGS}
        FROM trace_spans WHERE parent_span_id <> '' AND ({_ANY_TAG_MISSING})
        UNION ALL
        SELECT w.span_key, w.project_id, w.trace_id, p.parent_span_id, w.depth + 1,
               {", ".join(f"coalesce(w.{t}, p.{t})" for t in INHERITED_FIELDS)}
        FROM walk w
        JOIN trace_spans p ON p.project_id = w.project_id AND p.trace_id = w.trace_id
                          AND p.span_id = w.next_id
        WHERE w.depth < 256  -- a parent cycle in bad data ends here
    )
    SELECT span_key, {_TAGS} FROM walk
    QUALIFY row_number() OVER (PARTITION BY span_key ORDER BY depth DESC) = 1
) AS found
WHERE spans.span_key = found.span_key
  AND ({" OR ".join(f"spans.{t} IS DISTINCT FROM found.{t}" for t in INHERITED_FIELDS)})
RETURNING project_id, start_time::TIMESTAMP, user_id, true
"""


# LLM spans that may record the same provider call as a span of this batch (store/duplicates.py
# decides): those of touched traces that have another LLM span, and those sharing a response id.
_USAGE_FIELDS = " + ".join(
    f"({c} IS NOT NULL)::INT"
    for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
)
# The key as md5_number's input text: reading UHUGEINT keys into Python costs ~60 µs a row.
_CANDIDATE_COLUMNS = f"""project_id || ':' || trace_id || span_id AS span_key,
    project_id, trace_id, span_id, parent_span_id,
    provider, request_model, response_id, epoch_ns(start_time) AS start_ns, epoch_ns(end_time) AS end_ns,
    {_USAGE_FIELDS} AS usage_fields,
    (response_id IS NOT NULL)::INT + (response_model IS NOT NULL)::INT + (finish_reason IS NOT NULL)::INT
        AS details,
    coalesce(streaming AND contains(attributes, '"{semconv.USAGE_REPORT}":true'), false) AS usage_report,
    duplicate_of, service_name, input_tokens, output_tokens, error_type,
    json_extract_string(attributes, '$."otel.scope.name"') AS scope"""
# Only spans with a possible partner go to Python: an LLM parent or child of the same provider,
# a usage report and its usage-less siblings, a response id seen twice, or a twin in another
# trace (a lone root and a call of the same tokens overlapping it). Most traces (one call per
# step, under non-LLM parents) yield none. Twins are joined on their token counts first: equal
# counts are rare among calls of one provider, so the time overlap checks few pairs.
_DUPLICATE_CANDIDATES = f"""
WITH touched AS (SELECT DISTINCT project_id, trace_id FROM batch_spans WHERE {PROVIDER_CALL}),
answered AS (
    SELECT DISTINCT project_id, response_id FROM batch_spans WHERE {PROVIDER_CALL} AND response_id IS NOT NULL
),
llm AS (
    SELECT {_CANDIDATE_COLUMNS} FROM spans SEMI JOIN touched USING (project_id, trace_id)
    WHERE {PROVIDER_CALL} AND start_time BETWEEN $lo AND $hi
),
related AS (
    SELECT c.span_key AS a, p.span_key AS b FROM llm c JOIN llm p
        ON p.project_id = c.project_id AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
       AND p.provider = c.provider
    UNION ALL
    SELECT r.span_key, s.span_key FROM llm r JOIN llm s
        ON s.project_id = r.project_id AND s.trace_id = r.trace_id AND s.parent_span_id = r.parent_span_id
       AND s.provider = r.provider AND s.span_key <> r.span_key
    WHERE r.usage_report AND s.usage_fields = 0
    UNION ALL
    SELECT r.span_key, s.span_key FROM llm r JOIN llm s
        ON s.project_id = r.project_id AND s.trace_id = r.trace_id AND s.parent_span_id = r.parent_span_id
       AND s.provider = r.provider AND s.error_type = r.error_type AND s.span_key <> r.span_key
    WHERE r.usage_fields = 0 AND s.usage_fields = 0
),
twins AS (
    SELECT md5_number(s.project_id || ':' || s.trace_id || s.span_id) AS a,
           md5_number(b.project_id || ':' || b.trace_id || b.span_id) AS b
    FROM batch_spans b JOIN spans s
      ON s.project_id = b.project_id AND s.provider = b.provider
     AND s.input_tokens = b.input_tokens AND s.output_tokens = b.output_tokens
    WHERE b.operation IN {LLM_OPERATIONS_SQL} AND s.operation IN {LLM_OPERATIONS_SQL}
      AND s.trace_id <> b.trace_id AND (s.parent_span_id = '') <> (b.parent_span_id = '')
      AND s.service_name IS NOT DISTINCT FROM b.service_name
      AND s.start_time <= b.end_time AND b.start_time <= s.end_time
      AND s.start_time BETWEEN $lo AND $hi
),
keys AS (SELECT a AS span_key FROM related UNION SELECT b FROM related),
by_answer AS (
    SELECT {_CANDIDATE_COLUMNS} FROM spans SEMI JOIN answered USING (project_id, response_id)
    WHERE {PROVIDER_CALL} AND start_time BETWEEN $lo AND $hi
    QUALIFY count(*) OVER (PARTITION BY project_id, response_id) > 1
)
SELECT * FROM llm SEMI JOIN keys USING (span_key)
UNION
SELECT * FROM by_answer
UNION
SELECT {_CANDIDATE_COLUMNS} FROM spans
WHERE span_key IN (SELECT a FROM twins UNION SELECT b FROM twins) AND start_time BETWEEN $lo AND $hi
"""
_LEND_TAGS = f"""
UPDATE spans SET {", ".join(f"{t} = coalesce(spans.{t}, lent.{t})" for t in TAG_FIELDS)}
FROM (
    SELECT md5_number(p.counted) AS span_key,
           {", ".join(f"first(d.{t}) FILTER (WHERE d.{t} IS NOT NULL) AS {t}" for t in TAG_FIELDS)}
    FROM duplicate_pairs p JOIN spans d ON d.span_key = md5_number(p.duplicate)
    GROUP BY ALL
) AS lent
WHERE spans.span_key = lent.span_key AND ({" OR ".join(f"spans.{t} IS NULL" for t in TAG_FIELDS)})
RETURNING project_id, start_time::TIMESTAMP, user_id, true
"""

# Content of one span may come in parts: with the span, and as OTLP log records before or
# after it. Message lists keep the first complete value; events accumulate, and a part sent
# again (an exporter retry) is recognized by its text and not added twice.
_JOIN_EVENTS = """CASE WHEN {old} IS NULL THEN {new}
    WHEN {new} IS NULL OR contains({old}, trim({new}, '[]')) THEN {old}
    ELSE rtrim({old}, ']') || ',' || ltrim({new}, '[') END"""
_MERGE_CONTENT = f"""
INSERT INTO content
SELECT md5_number(project_id || ':' || trace_id || span_id) AS content_key,
       any_value(project_id), any_value(trace_id), any_value(span_id), min(start_time),
       first(system_instructions) FILTER (WHERE system_instructions IS NOT NULL),
       first(input_messages) FILTER (WHERE input_messages IS NOT NULL),
       first(output_messages) FILTER (WHERE output_messages IS NOT NULL),
       '[' || string_agg(DISTINCT trim(events, '[]'), ',') || ']'
FROM batch_content GROUP BY content_key
ON CONFLICT (content_key) DO UPDATE SET
    start_time = least(content.start_time, excluded.start_time),
    system_instructions = coalesce(content.system_instructions, excluded.system_instructions),
    input_messages = coalesce(content.input_messages, excluded.input_messages),
    output_messages = coalesce(content.output_messages, excluded.output_messages),
    events = {_JOIN_EVENTS.format(old="content.events", new="excluded.events")}
"""
_UPSERT_SCORES = f"""
INSERT OR REPLACE INTO scores
SELECT md5_number(project_id || ':' || score_id), {", ".join(SCORE_FIELD_NAMES)} FROM batch_scores
QUALIFY row_number() OVER (PARTITION BY project_id, score_id ORDER BY created_at DESC) = 1
"""


def _column(name: str, allowed: frozenset[str] | tuple[str, ...]) -> str:
    """A column name that may be inlined in SQL: only canonical names pass."""
    if name not in allowed:
        raise ValueError(f"{name!r} is not allowed here")
    return name


def _field(name: str, p: str = "") -> str:
    """The SQL expression of a groupable or filterable field: its column, or a derived field's
    expression (`input_bucket`)."""
    if name == "input_bucket":
        return input_bucket(p)
    return f"{p}{_column(name, FIELD_NAMES)}"


def _group(name: str, p: str = "") -> str:
    return f"{_field(_column(name, GROUPABLE_FIELDS), p)} AS {name}"


def _bucket(seconds: int) -> str:
    return f"time_bucket(INTERVAL '{int(seconds)} seconds', start_time::TIMESTAMP) AS bucket"


def _naive(value: Any) -> Any:
    """An aware datetime as DuckDB's TIMESTAMP wants it (UTC, no tzinfo); others unchanged."""
    return value.astimezone(UTC).replace(tzinfo=None) if isinstance(value, datetime) else value


def _dicts(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts with TIMESTAMP columns as aware UTC datetimes."""
    rows = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime) and value.tzinfo is None:
                row[key] = value.replace(tzinfo=UTC)
    return rows


def _score_condition(condition: ScoreCondition) -> tuple[str, list[Any]]:
    op = condition.op if condition.op in SCORE_OPERATORS else "="
    if isinstance(condition.value, str):
        return f"name = ? AND string_value {op} ?", [condition.name, condition.value]
    return f"name = ? AND value {op} ?", [condition.name, float(condition.value)]


def _where(f: SpanFilter, alias: str = "") -> tuple[str, list[Any]]:
    p = f"{alias}." if alias else ""
    clauses = [f"{p}project_id = ?"]
    params: list[Any] = [f.project_id]
    if f.since is not None:
        clauses.append(f"{p}start_time >= ?")
        params.append(f.since.astimezone(UTC).replace(tzinfo=None))
    if f.until is not None:
        clauses.append(f"{p}start_time < ?")
        params.append(f.until.astimezone(UTC).replace(tzinfo=None))
    for name, value in f.equals.items():
        column = _field(name, p)
        if value is None:
            clauses.append(f"{column} IS NULL")
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.name_contains:
        escaped = f.name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(f"{p}name ILIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    return " AND ".join(clauses), params


class DuckDBStore:
    """Store implementation over one DuckDB file."""

    def __init__(self, path: Path, memory_limit: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        config = {"wal_autocheckpoint": "256MB", "preserve_insertion_order": "false"}
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.path = path
        self._conn = duckdb.connect(str(path), config=config)
        self._lock = threading.RLock()  # advance_rollups holds it around a transaction
        self._writer = self._conn.cursor()
        self._migrate()
        self._marks = rollups.marks(self._writer)

    # --- lifecycle -------------------------------------------------------------------
    def _migrate(self) -> None:
        cur = self._writer
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
        applied = {row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, name, sql in migrations("duckdb"):
            if version in applied:
                continue
            with self._transaction() as tx:
                tx.execute(sql)
                tx.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name])

    def schema_version(self) -> int:
        with self._conn.cursor() as cur:
            return cur.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writer's cursor in BEGIN … COMMIT, under the write lock. On an error it is rolled
        back, and that error is the one raised (a failed write, e.g. with the disk full, may
        have ended the transaction already, and the ROLLBACK's own error would hide it)."""
        with self._lock:
            cur = self._writer
            cur.execute("BEGIN")
            try:
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._writer.close()
            self._conn.close()

    # --- writes ------------------------------------------------------------------------
    def spool_position(self) -> tuple[int, int] | None:
        with self._conn.cursor() as cur:
            row = cur.execute('SELECT segment, "offset" FROM spool_state WHERE id = 1').fetchone()
        return (row[0], row[1]) if row else None

    def write_batch(self, tables: Tables, spool_position: tuple[int, int] | None) -> int:
        with self._transaction() as cur:
            new = 0
            if tables.spans.num_rows:
                cur.register("batch_spans", tables.spans)
                new = cur.execute(
                    f"INSERT OR IGNORE INTO spans (span_key, {_SPAN_COLUMNS}) SELECT "
                    f"md5_number(project_id || ':' || trace_id || span_id), {_SPAN_COLUMNS} "
                    f"FROM batch_spans"
                ).fetchone()[0]
                # Spans of buckets already rolled up: the new ones, and those the batch
                # changed (tags lent by a late parent, duplicates found).
                changed = cur.execute(_INHERIT_TAGS).fetchall()
                if self._marks:
                    changed += cur.execute(
                        "SELECT DISTINCT project_id, start_time::TIMESTAMP, user_id, false "
                        "FROM batch_spans WHERE start_time < ?",
                        [max(self._marks.values())],
                    ).fetchall()
                changed += self._mark_duplicates(cur, tables.spans)
                cur.unregister("batch_spans")
                rollups.recompute(cur, map(Change._make, changed), self._marks)
            if tables.content.num_rows:
                cur.register("batch_content", tables.content)
                cur.execute(_MERGE_CONTENT)
                cur.unregister("batch_content")
            if tables.scores.num_rows:
                cur.register("batch_scores", tables.scores)
                cur.execute(_UPSERT_SCORES)
                cur.unregister("batch_scores")
            if spool_position is not None:
                cur.execute("INSERT OR REPLACE INTO spool_state VALUES (1, ?, ?)", list(spool_position))
        return int(new)

    def _mark_duplicates(self, cur: duckdb.DuckDBPyConnection, batch: pa.Table) -> list[tuple[Any, ...]]:
        """Set duplicate_of on the LLM spans that record a provider call another span counts,
        and give the counted span the attribution tags only its duplicates carry; the
        (project, start time, user, tags changed) of the spans changed."""
        # Spans of one call start within a day of each other: the bound lets zone maps skip
        # old row groups (as literals: a scalar subquery here would plan a nested loop).
        bounds = pc.min_max(batch.column("start_time").cast(pa.int64()))
        lo, hi = (datetime.fromtimestamp(bounds[end].as_py() / 1e9, UTC) for end in ("min", "max"))
        window = timedelta(days=1)
        params = {"lo": (lo - window).replace(tzinfo=None), "hi": (hi + window).replace(tzinfo=None)}
        rows = cur.execute(_DUPLICATE_CANDIDATES, params).fetchall()
        if len(rows) < 2:
            return []
        changed: list[tuple[Any, ...]] = []
        resolution = duplicates.resolve([duplicates.Candidate(*row) for row in rows])
        if resolution.changes:
            changes = pa.table(
                {"span_key": list(resolution.changes), "duplicate_of": list(resolution.changes.values())},
                schema=pa.schema([("span_key", pa.string()), ("duplicate_of", pa.string())]),
            )
            cur.register("duplicate_changes", changes)
            try:
                changed += cur.execute(
                    "UPDATE spans SET duplicate_of = c.duplicate_of FROM duplicate_changes c "
                    "WHERE spans.span_key = md5_number(c.span_key) "
                    "RETURNING project_id, start_time::TIMESTAMP, user_id, false"
                ).fetchall()
            finally:
                cur.unregister("duplicate_changes")
        if resolution.counted_by:
            pairs = pa.table(
                {"duplicate": list(resolution.counted_by), "counted": list(resolution.counted_by.values())}
            )
            cur.register("duplicate_pairs", pairs)
            try:
                changed += cur.execute(_LEND_TAGS).fetchall()
            finally:
                cur.unregister("duplicate_pairs")
        return changed

    def update_costs(self, project_id: str, costs: pa.Table) -> int:
        with self._transaction() as cur:
            cur.register("new_costs", costs)
            try:
                changed = cur.execute(
                    "UPDATE spans SET cost_usd = c.cost_usd, cost_known = c.cost_known, "
                    "attributes = c.attributes "
                    "FROM new_costs c WHERE spans.project_id = ? "
                    "AND spans.trace_id = c.trace_id AND spans.span_id = c.span_id "
                    "RETURNING project_id, start_time::TIMESTAMP, user_id, false",
                    [project_id],
                ).fetchall()
                rollups.recompute(cur, map(Change._make, changed), self._marks)
            finally:
                cur.unregister("new_costs")
        return len(changed)

    def advance_rollups(self, until: datetime) -> datetime:
        until = until.astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
        with self._lock:  # the marks change with the commit, before another write reads them
            with self._transaction() as cur:
                found = rollups.advance(cur, until)
            self._marks = found
        return found[MINUTE.table].replace(tzinfo=UTC)

    def apply_sampling(self, project_id: str, policy: SamplingPolicy, now: datetime) -> pa.Table:
        with self._transaction() as cur:
            verdicts = sampling.sweep(cur, project_id, policy, _naive(now), self._marks)
        return verdicts

    def simulate_sampling(
        self, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
    ) -> pa.Table:
        with self._conn.cursor() as cur:
            return sampling.simulate(cur, project_id, policy, _naive(since), _naive(until))

    def rolled_up_until(self, grain: Grain = MINUTE) -> datetime | None:
        mark = self._marks.get(grain.table)
        return mark.replace(tzinfo=UTC) if mark is not None else None

    def delete_before(self, cutoff: datetime) -> dict[str, int]:
        # One transaction: a read sees the spans and their rollups end at the same instant.
        with self._transaction() as cur:
            return {
                table: cur.execute(f"DELETE FROM {table} WHERE {column} < ?", [_naive(cutoff)]).fetchone()[0]
                for table, column in DATED
            }

    # --- projects ----------------------------------------------------------------------
    def delete_project(self, project_id: str) -> dict[str, int]:
        with self._transaction() as cur:
            return {
                table: cur.execute(f"DELETE FROM {table} WHERE project_id = ?", [project_id]).fetchone()[0]
                for table in (*(t for t, _ in DATED), *UNDATED)
            }

    def create_project(self, project_id: str, key_hash: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._transaction() as cur:
            cur.execute("INSERT INTO projects VALUES (?, ?)", [project_id, now])
            cur.execute("INSERT INTO api_keys VALUES (?, ?, ?)", [key_hash, project_id, now])

    def add_key(self, project_id: str, key_hash: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._writer.execute("INSERT INTO api_keys VALUES (?, ?, ?)", [key_hash, project_id, now])

    def project_for_key(self, key_hash: str) -> str | None:
        with self._conn.cursor() as cur:
            row = cur.execute("SELECT project_id FROM api_keys WHERE key_hash = ?", [key_hash]).fetchone()
        return row[0] if row else None

    def projects(self) -> list[Project]:
        with self._conn.cursor() as cur:
            rows = cur.execute("SELECT project_id, created_at FROM projects ORDER BY 1").fetchall()
        return [Project(project_id, created.replace(tzinfo=UTC)) for project_id, created in rows]

    # --- alerts ------------------------------------------------------------------------
    # --- sampling ----------------------------------------------------------------------
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

    # --- alerts ------------------------------------------------------------------------
    def put_alert_rule(self, project_id: str, name: str, spec: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._writer.execute(
                "INSERT OR REPLACE INTO alert_rules VALUES (?, ?, ?, ?)", [project_id, name, spec, now]
            )

    def delete_alert_rule(self, project_id: str, name: str) -> bool:
        with self._lock:
            deleted = self._writer.execute(
                "DELETE FROM alert_rules WHERE project_id = ? AND name = ? RETURNING name", [project_id, name]
            ).fetchall()
        return bool(deleted)

    def alert_rules(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        where, params = ("WHERE project_id = ?", [project_id]) if project_id is not None else ("", [])
        with self._conn.cursor() as cur:
            return cur.execute(
                f"SELECT project_id, name, spec FROM alert_rules {where} ORDER BY 1, 2", params
            ).fetchall()

    def alert_states(self, project_id: str) -> list[dict[str, Any]]:
        return _dicts(
            self._arrow(
                f"SELECT {', '.join(ALERT_STATE_FIELDS)} FROM alert_states WHERE project_id = ? "
                "ORDER BY rule, group_key",
                [project_id],
            )
        )

    def save_alert_evaluation(
        self,
        project_id: str,
        states: list[dict[str, Any]],
        cleared: list[tuple[str, str]],
        events: list[dict[str, Any]],
    ) -> None:
        with self._transaction() as cur:
            for state in states:
                cur.execute(
                    "INSERT OR REPLACE INTO alert_states VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [project_id, *(_naive(state[k]) for k in ALERT_STATE_FIELDS)],
                )
            for rule, group_key in cleared:
                cur.execute(
                    "DELETE FROM alert_states WHERE project_id = ? AND rule = ? AND group_key = ?",
                    [project_id, rule, group_key],
                )
            for event in events:
                cur.execute(
                    "INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, NULL)",
                    [
                        event["event_id"],
                        project_id,
                        event["rule"],
                        event["group_key"],
                        event["status"],
                        _naive(event["at"]),
                        orjson.dumps(event["payload"]).decode(),
                    ],
                )

    def alert_events(
        self, project_id: str | None = None, undelivered: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        if project_id is not None:
            clauses.append("project_id = ?")
            params.append(project_id)
        if undelivered:
            clauses.append("delivered_at IS NULL")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "created_at" if undelivered else "created_at DESC"
        rows = _dicts(
            self._arrow(
                "SELECT event_id, project_id, rule, group_key, status, created_at AS at, payload, "
                f"delivered_at, attempts, last_error FROM alert_events {where} "
                f"ORDER BY {order} LIMIT {int(limit)}",
                params,
            )
        )
        for row in rows:
            row["payload"] = orjson.loads(row["payload"])
        return rows

    def mark_alert_event(self, event_id: str, delivered: bool, error: str | None = None) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._lock:
            self._writer.execute(
                "UPDATE alert_events SET attempts = attempts + 1, last_error = ?, "
                "delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END WHERE event_id = ?",
                [error, delivered, now, event_id],
            )

    # --- reads -------------------------------------------------------------------------
    def _arrow(self, sql: str, params: list[Any]) -> pa.Table:
        with self._conn.cursor() as cur:
            return cur.sql(sql, params=params).to_arrow_table()

    def spans(self, f: SpanFilter, columns: tuple[str, ...], limit: int | None = None) -> pa.Table:
        cols = ", ".join(_column(c, FIELD_NAMES) for c in columns)
        where, params = _where(f)
        sql = f"SELECT {cols} FROM spans WHERE {where} ORDER BY start_time"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._arrow(sql, params)

    def trace_spans(self, project_id: str, trace_id: str) -> pa.Table:
        return self._arrow(
            f"SELECT {_SPAN_COLUMNS} FROM spans WHERE trace_id = ? AND project_id = ? "
            "ORDER BY start_time, span_id",
            [trace_id, project_id],
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

    def trace_summaries(self, f: TraceFilter, limit: int, offset: int) -> pa.Table:
        where, params = _where(f.spans)
        post = []
        post_params: list[Any] = []
        if f.min_cost_usd is not None:
            post.append("cost_usd >= ?")
            post_params.append(f.min_cost_usd)
        if f.min_duration_ms is not None:
            post.append("duration_ms >= ?")
            post_params.append(f.min_duration_ms)
        if f.errors_only:
            post.append("status = 'error'")
        for condition in f.scores:
            scored, scored_params = _score_condition(condition)
            where += f" AND trace_id IN (SELECT trace_id FROM scores WHERE project_id = ? AND {scored})"
            params += [f.spans.project_id, *scored_params]
        counted = "s.duplicate_of IS NULL"
        duration = "(epoch_ns(max(s.end_time)) - epoch_ns(min(s.start_time))) / 1e6"
        status = "CASE WHEN bool_or(s.status = 'error') THEN 'error' ELSE 'ok' END"
        # Traces are listed newest first by their first matching span. The page is picked before
        # the summaries are built, so a million-span store summarises 50 traces, not all of
        # them; conditions on trace totals first sum only the totals they test.
        page = f"ORDER BY first DESC, trace_id LIMIT {int(limit)} OFFSET {int(offset)}"
        if post:
            chosen = f"""
            totals AS (
                SELECT s.trace_id, any_value(hits.first) AS first,
                    sum(s.cost_usd) FILTER (WHERE {counted}) AS cost_usd,
                    {duration} AS duration_ms, {status} AS status
                FROM spans s JOIN hits USING (trace_id)
                WHERE s.project_id = ?
                GROUP BY s.trace_id
            ),
            chosen AS (SELECT trace_id, first FROM totals WHERE {" AND ".join(post)} {page})"""
            hits_page, chosen_params = "", [f.spans.project_id, *post_params]
        else:
            chosen, hits_page, chosen_params = "chosen AS (SELECT * FROM hits)", page, []
        sql = f"""
        WITH hits AS (
            SELECT trace_id, min(start_time) AS first FROM spans WHERE {where} GROUP BY trace_id {hits_page}
        ),
        {chosen},
        t AS (
            SELECT s.trace_id, any_value(chosen.first) AS first,
                min(s.start_time) AS start_time,
                max(s.end_time) AS end_time,
                {duration} AS duration_ms,
                count(*) AS spans,
                coalesce(arg_min(s.name, s.start_time) FILTER (WHERE s.parent_span_id = ''),
                         arg_min(s.name, s.start_time)) AS root_name,
                {status} AS status,
                list(DISTINCT s.error_type) FILTER (WHERE s.error_type IS NOT NULL) AS error_types,
                list(DISTINCT coalesce(s.response_model, s.request_model))
                    FILTER (WHERE coalesce(s.response_model, s.request_model) IS NOT NULL) AS models,
                count(*) FILTER (WHERE s.operation IN {LLM_OPERATIONS_SQL} AND {counted}) AS llm_calls,
                sum(s.input_tokens) FILTER (WHERE {counted})::BIGINT AS input_tokens,
                sum(s.output_tokens) FILTER (WHERE {counted})::BIGINT AS output_tokens,
                sum(s.total_tokens) FILTER (WHERE {counted})::BIGINT AS total_tokens,
                sum(s.cost_usd) FILTER (WHERE {counted}) AS cost_usd,
                count(*) FILTER (WHERE s.cost_known = false AND {counted}) AS unpriced_spans,
                arg_min(s.user_id, s.start_time) FILTER (WHERE s.user_id IS NOT NULL) AS user_id,
                arg_min(s.session_id, s.start_time) FILTER (WHERE s.session_id IS NOT NULL) AS session_id,
                arg_min(s.tenant_id, s.start_time) FILTER (WHERE s.tenant_id IS NOT NULL) AS tenant_id,
                arg_min(s.feature, s.start_time) FILTER (WHERE s.feature IS NOT NULL) AS feature,
                arg_min(s.service_name, s.start_time) AS service_name
            FROM spans s JOIN chosen USING (trace_id)
            WHERE s.project_id = ?
            GROUP BY s.trace_id
        )
        SELECT * EXCLUDE (first) FROM t ORDER BY first DESC, trace_id
        """
        return self._arrow(sql, [*params, *chosen_params, f.spans.project_id])

    def session_summaries(self, f: SpanFilter, limit: int, offset: int) -> pa.Table:
        where, params = _where(f)
        counted = "s.duplicate_of IS NULL"
        # The page is the sessions most recently active in the filter; each is then summed whole.
        sql = f"""
        WITH chosen AS (
            SELECT session_id, max(start_time) AS last_active FROM spans
            WHERE {where} AND session_id IS NOT NULL
            GROUP BY session_id
            ORDER BY last_active DESC, session_id LIMIT {int(limit)} OFFSET {int(offset)}
        )
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
        WHERE s.project_id = ?
        GROUP BY s.session_id
        ORDER BY any_value(chosen.last_active) DESC, s.session_id
        """
        return self._arrow(sql, [*params, f.project_id])

    def scores(self, project_id: str, trace_id: str) -> pa.Table:
        return self._arrow(
            f"SELECT {', '.join(SCORE_FIELD_NAMES)} FROM scores WHERE trace_id = ? AND project_id = ? "
            "ORDER BY created_at, score_id",
            [trace_id, project_id],
        )

    def score_summary(self, f: SpanFilter, group_by: tuple[str, ...], name: str | None) -> pa.Table:
        groups = [_group(g, "sp.") for g in group_by]
        where, params = _where(f, "sp")
        sc_params: list[Any] = [f.project_id]
        named = ""
        if name is not None:
            named = "AND sc.name = ?"
            sc_params.append(name)
        # The scored span, or for a trace-level score the trace's root span, carries the tags
        # (inherited ones included) and the time.
        sql = f"""
        SELECT sc.name, sc.data_type, {", ".join([*groups, ""])}
            count(*) AS scores,
            avg(sc.value) AS mean,
            min(sc.value) AS min,
            max(sc.value) AS max,
            histogram(sc.string_value) FILTER (WHERE sc.string_value IS NOT NULL) AS labels
        FROM scores sc
        JOIN spans sp ON sp.project_id = sc.project_id AND sp.trace_id = sc.trace_id
            AND (sp.span_id = sc.span_id OR (sc.span_id = '' AND sp.parent_span_id = ''))
        WHERE sc.project_id = ? {named} AND {where}
        GROUP BY ALL ORDER BY sc.name, scores DESC
        """
        return self._arrow(sql, [*sc_params, *params])

    def aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, distinct: bool = True
    ) -> pa.Table:
        groups = [_group(g) for g in group_by]
        if bucket_seconds is not None:
            groups.insert(0, _bucket(bucket_seconds))
        where, params = _where(f)
        select = ", ".join([*groups, ""]) if groups else ""
        errors_by_type = ", ".join(
            f"count(*) FILTER (WHERE {LLM_CALL} AND status = 'error' AND error_type = '{t}') AS errors_{t}"
            for t in ERROR_TYPES
        )
        # What a rollup row sums (duckdb_rollups.COUNTS), then what only spans can count.
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

    def quantiles(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        quantiles: tuple[float, ...],
        bucket_seconds: int | None = None,
    ) -> pa.Table:
        groups = [_group(g) for g in group_by]
        if bucket_seconds is not None:
            groups.insert(0, _bucket(bucket_seconds))
        qs = "[" + ", ".join(repr(float(q)) for q in quantiles if 0 <= q <= 1) + "]"
        parts = []
        for m in measures:
            column = _column(m, _MEASURES)
            parts.append(f"quantile_cont({column}, {qs}) AS {column}")
            parts.append(f"count({column}) AS {column}_count")
        where, params = _where(f)
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
        f: SpanFilter,
        group_by: tuple[str, ...],
        measure: str,
        bucket_seconds: int | None,
        from_rollups: bool,
    ) -> pa.Table:
        spans_where = None if from_rollups else _where(f)
        sql, params = rollups.sketch_sql(f, group_by, measure, bucket_seconds, from_rollups, spans_where)
        return self._arrow(sql, params)

    def histogram(
        self, f: SpanFilter, group_by: tuple[str, ...], measure: str, bounds: tuple[float, ...]
    ) -> pa.Table:
        groups = [_group(g) for g in group_by]
        column = _column(measure, _HISTOGRAM_MEASURES)
        buckets = [
            f"count(*) FILTER (WHERE {column} <= {float(bound)!r}) AS le_{n}"
            for n, bound in enumerate(bounds)
        ]
        where, params = _where(f)
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
        where, params = _where(f)
        with self._conn.cursor() as cur:
            reader = cur.sql(
                f"SELECT {_SPAN_COLUMNS} FROM spans WHERE {where} ORDER BY start_time, span_id",
                params=params,
            ).to_arrow_reader(batch_rows)
            yield from reader
