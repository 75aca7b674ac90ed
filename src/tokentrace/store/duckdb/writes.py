"""Writes to DuckDB: a batch of spans, content and scores in one transaction (duplicates marked,
tags inherited and lent, the rollups it touches recomputed), and costs set after the fact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace import semconv
from tokentrace.canonical import (
    INHERITED_FIELDS,
    SCORE_FIELD_NAMES,
    TAG_FIELDS,
    Tables,
)
from tokentrace.store import duplicates, inheritance
from tokentrace.store.duckdb import rollups
from tokentrace.store.duckdb.connection import SPAN_COLUMNS
from tokentrace.store.record_tags import record_tags
from tokentrace.store.rollups import Change
from tokentrace.store.sql import LLM_OPERATIONS_SQL, PROVIDER_CALL

_TAGS = ", ".join(INHERITED_FIELDS)
_SPAN_PLACE = ["project_id", "trace_id", "span_id", "start_time"]


_ANY_TAG_MISSING = " OR ".join(f"{t} IS NULL" for t in INHERITED_FIELDS)


# A span inherits each attribution tag it lacks (and its agent) from its nearest ancestor that has
# it, whatever order the spans arrive in. A batch's spans take what their ancestors in the batch
# carry (store/inheritance.py), then what their nearest stored ancestor holds (its tags are
# already inherited); a span whose chain breaks at a span not stored yet waits for it in
# inherit_waiting, and takes that span's tags when it arrives. No stored trace is walked.
_BATCH_KEY = "md5_number(project_id || ':' || trace_id || span_id)"

# A span delivered twice (a client's retry, in this batch or an earlier one) is stored once: the
# same key and start time. Only the stored spans within the batch's start times are looked at
# (as literals, so zone maps skip the other row groups): no index to keep, constant in table size.
# A batch holding a span twice (rare: a retry that came before the first was written) is made
# distinct first; a window over every column of every row costs ~4 µs a span, so only then.
_INSERT_NEW = """
INSERT INTO spans (span_key, {columns})
SELECT key, {columns} FROM (SELECT {key} AS key, * FROM batch_spans {distinct}) b
WHERE NOT EXISTS (
    SELECT 1 FROM spans s
    WHERE s.span_key = b.key AND s.start_time = b.start_time AND s.start_time BETWEEN $lo AND $hi
)
"""
_INSERT_ONCE = _INSERT_NEW.format(columns=SPAN_COLUMNS, key=_BATCH_KEY, distinct="")
_INSERT_DISTINCT = _INSERT_NEW.format(
    columns=SPAN_COLUMNS,
    key=_BATCH_KEY,
    distinct="QUALIFY row_number() OVER (PARTITION BY key, start_time) = 1",
)
#: The hours the batch's traces have spans in (a resent span's hour again: reads take each once).
_TRACE_HOURS = """
INSERT INTO trace_hours
SELECT DISTINCT project_id, md5_number(trace_id), date_trunc('hour', start_time::TIMESTAMP) FROM batch_spans
"""
#: The hours the batch's sessions have spans in. A span given its session later (a tag update
#: returns its session id) adds its hour then (`_add_session_hours`).
_SESSION_HOURS = """
INSERT INTO session_hours
SELECT DISTINCT project_id, md5_number(session_id), date_trunc('hour', start_time::TIMESTAMP)
FROM {rows} WHERE session_id IS NOT NULL
"""
_SESSION_HOUR_ROWS = pa.schema(
    [("project_id", pa.string()), ("start_time", pa.timestamp("us")), ("session_id", pa.string())]
)
_REPEATS = """
SELECT count(*) - count(DISTINCT (project_id, trace_id, span_id, start_time)) FROM batch_spans
"""


def _add_session_hours(cur: duckdb.DuckDBPyConnection, changed: list[tuple[Any, ...]]) -> None:
    """The hours of the stored spans a tag update gave a session (the rows it returned, each
    with its session id after the project, start, user and tags-changed of a rollups Change)."""
    given = [row for row in changed if len(row) > 4 and row[4] is not None]
    if not given:
        return
    project, start, _, _, session = zip(*(row[:5] for row in given), strict=True)
    rows = pa.table([list(project), list(start), list(session)], schema=_SESSION_HOUR_ROWS)
    cur.register("given_sessions", rows)
    try:
        cur.execute(_SESSION_HOURS.format(rows="given_sessions"))
    finally:
        cur.unregister("given_sessions")


def _bounds(batch: pa.Table, margin: timedelta) -> dict[str, datetime]:
    """The batch's first and last start time, widened by `margin`, as naive UTC datetimes (a
    second more each side: a datetime drops the nanoseconds)."""
    bounds = pc.min_max(batch.column("start_time").cast(pa.int64()))
    lo, hi = (
        datetime.fromtimestamp(bounds[end].as_py() / 1e9, UTC).replace(tzinfo=None) for end in ("min", "max")
    )
    return {"lo": lo - margin - timedelta(seconds=1), "hi": hi + margin + timedelta(seconds=1)}


# The nearest stored ancestor of each batch span that left the batch still lacking a tag: its
# tags, and what it waits for itself (its chain broken above it). Ancestors start before their
# descendants (long agent runs aside, within days): the bound lets zone maps skip old row groups.
_EXIT_PARENTS = f"""
SELECT e.row, {", ".join(f"p.{t}" for t in INHERITED_FIELDS)}, w.missing_key::VARCHAR AS waits_for
FROM batch_exits e
JOIN spans p ON p.span_key = md5_number(e.project_id || ':' || e.trace_id || e.exit_id)
LEFT JOIN inherit_waiting w ON w.span_key = p.span_key
WHERE p.start_time >= $since
"""

_WAIT = f"""
INSERT OR REPLACE INTO inherit_waiting
SELECT {_BATCH_KEY}, coalesce(waits_for::UHUGEINT, md5_number(project_id || ':' || trace_id || exit_id)),
       project_id, trace_id, start_time
FROM batch_waiting
"""

# The stored spans waiting for a span of this batch take its tags; those it waits for itself
# (its own chain broken above it) they wait for next. One pass over the batch's keys finds them
# (`arrived`, small), and the update, the re-pointing and the deletes read that. A waiting span
# starts after the ancestor it waits for: `$since` (the batch's first start, less a day for clock
# skew) lets zone maps skip the older waiting spans (those of a parent that never comes: an
# upstream service's span).
_ARRIVED = f"""
CREATE OR REPLACE TEMP TABLE arrived AS
SELECT w.span_key, w.start_time, {", ".join(f"b.{t}" for t in INHERITED_FIELDS)},
       further.missing_key AS next_key
FROM inherit_waiting w
JOIN (SELECT {_BATCH_KEY} AS key, {_TAGS} FROM batch_spans) AS b ON w.missing_key = b.key
LEFT JOIN inherit_waiting further ON further.span_key = b.key
WHERE w.start_time >= $since
"""

_PUSH_DOWN = f"""
UPDATE spans SET {", ".join(f"{t} = coalesce(spans.{t}, a.{t})" for t in INHERITED_FIELDS)}
FROM arrived a
WHERE spans.span_key = a.span_key AND spans.start_time BETWEEN $lo AND $hi
  AND ({" OR ".join(f"(spans.{t} IS NULL AND a.{t} IS NOT NULL)" for t in INHERITED_FIELDS)})
RETURNING project_id, start_time::TIMESTAMP, user_id, true, session_id
"""

_WAIT_FURTHER = """
UPDATE inherit_waiting SET missing_key = a.next_key
FROM arrived a WHERE inherit_waiting.span_key = a.span_key AND a.next_key IS NOT NULL
"""

_STOP_WAITING = """
DELETE FROM inherit_waiting WHERE span_key IN (SELECT span_key FROM arrived WHERE next_key IS NULL)
"""
_CLOCK_SKEW = timedelta(days=1)
_SAME_CALL = timedelta(hours=1)

_RECORD_TAGS_OF_BATCH = f"""
SELECT k.row, {", ".join(f"r.{t}" for t in TAG_FIELDS)}
FROM batch_keys k JOIN record_tags r ON r.tag_key = md5_number(k.project_id || ':' || k.trace_id || k.span_id)
"""

_ANCESTOR_WINDOW = timedelta(days=7)
# (a schema, its empty table made when needed: making one at import loads pandas, ~0.9 s)
_WAITING = pa.schema(
    [
        ("project_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("start_time", pa.timestamp("ns", tz="UTC")),
        ("exit_id", pa.string()),
        ("waits_for", pa.string()),
    ]
)

# Tags from a span's log records change a stored span's own tags: its traces are walked whole
# (rare: records rarely carry tags), each span missing a tag keeping the first value met above it.
_INHERIT_TAGS = f"""
UPDATE spans SET {", ".join(f"{t} = found.{t}" for t in INHERITED_FIELDS)}
FROM (
    WITH RECURSIVE
    touched AS (SELECT DISTINCT project_id, trace_id FROM batch_traces),
    trace_spans AS (
        SELECT s.span_key, s.project_id, s.trace_id, s.span_id, s.parent_span_id,
               {", ".join(f"s.{t}" for t in INHERITED_FIELDS)}
        FROM spans s SEMI JOIN touched USING (project_id, trace_id)
        -- long agent runs aside, ancestors start within days of their descendants; the bound
        -- lets zone maps skip old row groups
        WHERE s.start_time >= (SELECT min(start_time) FROM batch_traces) - INTERVAL 7 DAY
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
RETURNING project_id, start_time::TIMESTAMP, user_id, true, session_id
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
# step, under non-LLM parents) yield none. The partners are found on narrow columns (the wide
# ones, the attributes above all, only for the few found: computing them for every LLM span of
# the window was ~4 µs a span of the write). Twins are joined on their token counts first:
# equal counts are rare among calls of one provider, so the time overlap checks few pairs; the
# root side is a filter of its own scan (usually no batch span is a root: that join is empty).
# The rows found are read with IN, not a SEMI JOIN: DuckDB built that join's table from every
# LLM span of the window (~30 ms at 10M stored) to probe it with the few keys found, or none.
_TWINS = f"""
    SELECT s.span_key AS a, md5_number(b.project_id || ':' || b.trace_id || b.span_id) AS b
    FROM batch_spans b JOIN spans s
      ON s.project_id = b.project_id AND s.provider = b.provider
     AND s.input_tokens = b.input_tokens AND s.output_tokens = b.output_tokens
    WHERE b.operation IN {LLM_OPERATIONS_SQL} AND s.operation IN {LLM_OPERATIONS_SQL}
      AND s.trace_id <> b.trace_id AND {{roots}}
      AND s.service_name IS NOT DISTINCT FROM b.service_name
      AND s.start_time <= b.end_time AND b.start_time <= s.end_time
      AND s.start_time BETWEEN $lo AND $hi"""
_DUPLICATE_CANDIDATES = f"""
WITH touched AS (SELECT DISTINCT project_id, trace_id FROM batch_spans WHERE {PROVIDER_CALL}),
answered AS (
    SELECT DISTINCT project_id, response_id FROM batch_spans WHERE {PROVIDER_CALL} AND response_id IS NOT NULL
),
llm AS (
    SELECT span_key, project_id, trace_id, span_id, parent_span_id, provider, error_type,
           {_USAGE_FIELDS} AS usage_fields,
           CASE WHEN streaming THEN contains(attributes, '"{semconv.USAGE_REPORT}":true') ELSE false END
               AS usage_report
    FROM spans SEMI JOIN touched USING (project_id, trace_id)
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
    {_TWINS.format(roots="b.parent_span_id = '' AND s.parent_span_id <> ''")}
    UNION ALL
    {_TWINS.format(roots="b.parent_span_id <> '' AND s.parent_span_id = ''")}
),
found AS (
    SELECT a AS span_key FROM related UNION SELECT b FROM related
    UNION SELECT a FROM twins UNION SELECT b FROM twins
),
repeated AS (
    SELECT project_id, response_id FROM spans SEMI JOIN answered USING (project_id, response_id)
    WHERE {PROVIDER_CALL} AND start_time BETWEEN $lo AND $hi
    GROUP BY ALL HAVING count(*) > 1
)
SELECT {_CANDIDATE_COLUMNS} FROM spans
WHERE span_key IN (SELECT span_key FROM found) AND start_time BETWEEN $lo AND $hi
UNION
SELECT {_CANDIDATE_COLUMNS} FROM spans
WHERE (project_id, response_id) IN (SELECT (project_id, response_id) FROM repeated)
  AND {PROVIDER_CALL} AND start_time BETWEEN $lo AND $hi
"""


# Tags that came on a span's log records (ingest/logs.py) are the span's own: kept in record_tags
# and lent to the span, whether the span is in this batch or stored before its records came.
_MERGE_RECORD_TAGS = f"""
INSERT INTO record_tags
SELECT md5_number(project_id || ':' || trace_id || span_id) AS tag_key,
       any_value(project_id), any_value(trace_id), any_value(span_id), min(start_time),
       {", ".join(f"first({t}) FILTER (WHERE {t} IS NOT NULL)" for t in TAG_FIELDS)}
FROM batch_record_tags GROUP BY tag_key
ON CONFLICT (tag_key) DO UPDATE SET
    {", ".join(f"{t} = coalesce(record_tags.{t}, excluded.{t})" for t in TAG_FIELDS)}
"""

_TAGS_FROM_RECORDS = f"""
UPDATE spans SET {", ".join(f"{t} = coalesce(spans.{t}, r.{t})" for t in TAG_FIELDS)}
FROM record_tags r
WHERE spans.span_key = r.tag_key
  AND r.tag_key IN (SELECT md5_number(project_id || ':' || trace_id || span_id) FROM batch_traces)
  AND ({" OR ".join(f"(spans.{t} IS NULL AND r.{t} IS NOT NULL)" for t in TAG_FIELDS)})
RETURNING project_id, start_time::TIMESTAMP, user_id, true, session_id
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
RETURNING project_id, start_time::TIMESTAMP, user_id, true, session_id
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


# Most batches hold each span's content once, and none of it stored yet: those rows go in as the
# merge would make them (a lone part is its own merge), without the grouping and the conflict
# updates (~3.0 -> ~2.2 µs of the writer's CPU a span, bench content). Where a key was stored
# already, the merge runs over the whole batch after: a lone part merged with itself changes
# nothing (two parts of one span in the batch would add their events twice: they take the merge).
_CONTENT_REPEATS = "SELECT count(*) - count(DISTINCT (project_id, trace_id, span_id)) FROM batch_content"
_INSERT_NEW_CONTENT = """
INSERT OR IGNORE INTO content
SELECT md5_number(project_id || ':' || trace_id || span_id), project_id, trace_id, span_id, start_time,
       system_instructions, input_messages, output_messages, '[' || trim(events, '[]') || ']'
FROM batch_content
"""


_UPSERT_SCORES = f"""
INSERT OR REPLACE INTO scores
SELECT md5_number(project_id || ':' || score_id), {", ".join(SCORE_FIELD_NAMES)} FROM batch_scores
QUALIFY row_number() OVER (PARTITION BY project_id, score_id ORDER BY created_at DESC) = 1
"""


class DuckDBWrites:
    """SpanWriter's writes (retention's deletes are in catalog.py, beside the projects)."""

    def spool_position(self) -> tuple[int, int] | None:
        with self._conn.cursor() as cur:
            row = cur.execute('SELECT segment, "offset" FROM spool_state WHERE id = 1').fetchone()
        return (row[0], row[1]) if row else None

    def write_batch(self, tables: Tables, spool_position: tuple[int, int] | None) -> int:
        with self._transaction() as cur:
            new = 0
            spans, content = tables.spans, tables.content
            if content.num_rows:
                cur.register("batch_content", content)
                self._merge_content(cur, content.num_rows)
                cur.unregister("batch_content")
            tagged = record_tags(content)
            if tagged.num_rows:
                cur.register("batch_record_tags", tagged)
                cur.execute(_MERGE_RECORD_TAGS)
                cur.unregister("batch_record_tags")
                self._has_record_tags = True
            if spans.num_rows or tagged.num_rows:
                changed: list[tuple[Any, ...]] = []
                if spans.num_rows:
                    spans, waiting = self._inherit(cur, spans)
                cur.register("batch_spans", spans)
                if spans.num_rows:
                    repeats = cur.execute(_REPEATS).fetchone()[0]
                    insert = _INSERT_DISTINCT if repeats else _INSERT_ONCE
                    new = cur.execute(insert, _bounds(spans, timedelta(0))).fetchone()[0]
                    cur.execute(_TRACE_HOURS)
                    cur.execute(_SESSION_HOURS.format(rows="batch_spans"))
                    if waiting.num_rows:
                        cur.register("batch_waiting", waiting)
                        cur.execute(_WAIT)
                        cur.unregister("batch_waiting")
                    changed += self._push_down(cur, spans)
                if tagged.num_rows:
                    # Spans of this batch took their records' tags before they inherited; stored
                    # spans take them now, and their traces inherit again.
                    cur.register("batch_traces", tagged.select(_SPAN_PLACE))
                    changed += cur.execute(_TAGS_FROM_RECORDS).fetchall()
                    changed += cur.execute(_INHERIT_TAGS).fetchall()
                    cur.unregister("batch_traces")
                # Spans of buckets already rolled up: the new ones, and those the batch
                # changed (tags from log records or lent by a late parent, duplicates found).
                if self._marks and spans.num_rows:
                    changed += cur.execute(
                        "SELECT DISTINCT project_id, start_time::TIMESTAMP, user_id, false "
                        "FROM batch_spans WHERE start_time < ?",
                        [max(self._marks.values())],
                    ).fetchall()
                if spans.num_rows:
                    changed += self._mark_duplicates(cur, spans)
                cur.unregister("batch_spans")
                _add_session_hours(cur, changed)
                rollups.recompute(cur, (Change._make(row[:4]) for row in changed), self._marks)
            if tables.scores.num_rows:
                cur.register("batch_scores", tables.scores)
                cur.execute(_UPSERT_SCORES)
                cur.unregister("batch_scores")
            if spool_position is not None:
                cur.execute("INSERT OR REPLACE INTO spool_state VALUES (1, ?, ?)", list(spool_position))
        return int(new)

    def _merge_content(self, cur: duckdb.DuckDBPyConnection, rows: int) -> None:
        """batch_content into content, each span's parts merged with what is stored."""
        repeats = cur.execute(_CONTENT_REPEATS).fetchall()[0][0]
        if repeats or cur.execute(_INSERT_NEW_CONTENT).fetchall()[0][0] != rows:
            cur.execute(_MERGE_CONTENT)

    def _inherit(self, cur: duckdb.DuckDBPyConnection, spans: pa.Table) -> tuple[pa.Table, pa.Table]:
        """The batch's spans with their own tags from log records that came first, and the tags
        they inherit from their ancestors, in the batch and stored; and those that wait for an
        ancestor not stored yet (project_id, trace_id, span_id, start_time, exit_id, waits_for)."""
        if self._has_record_tags:
            spans = self._own_record_tags(cur, spans)
        resolved = inheritance.resolve(spans)
        spans = resolved.spans
        exiting = resolved.exiting
        if not pc.any(exiting).as_py():
            return spans, _WAITING.empty_table()
        rows = pc.indices_nonzero(exiting)
        exits = spans.select(["project_id", "trace_id", "span_id", "start_time"]).take(rows)
        exits = exits.append_column("exit_id", resolved.exits.take(rows)).append_column("row", rows)
        first_ns = pc.min(exits["start_time"].cast(pa.int64())).as_py()
        since = datetime.fromtimestamp(first_ns / 1e9, UTC).replace(tzinfo=None) - _ANCESTOR_WINDOW
        cur.register("batch_exits", exits)
        try:
            found = cur.sql(_EXIT_PARENTS, params={"since": since}).to_arrow_table()
        finally:
            cur.unregister("batch_exits")
        spans = inheritance.lend(spans, found["row"], found)
        # Still lacking a tag: wait for the exit when it is not stored, or for what it waits for.
        waits_for = pc.take(found["waits_for"], pc.index_in(exits["row"], found["row"]))
        not_stored = pc.invert(pc.is_in(exits["row"], found["row"]))
        still = pc.take(inheritance.lacking(spans), exits["row"])
        keep = pc.and_(still, pc.or_(not_stored, pc.is_valid(waits_for)))
        waiting = exits.drop_columns(["row"]).append_column("waits_for", waits_for).filter(keep)
        return spans, waiting

    def _own_record_tags(self, cur: duckdb.DuckDBPyConnection, spans: pa.Table) -> pa.Table:
        """The batch's spans with the tags their log records, stored before them, carry: their
        own, so they come before any an ancestor lends."""
        keys = spans.select(["project_id", "trace_id", "span_id"])
        cur.register("batch_keys", keys.append_column("row", inheritance.row_numbers(spans.num_rows)))
        try:
            found = cur.sql(_RECORD_TAGS_OF_BATCH).to_arrow_table()
        finally:
            cur.unregister("batch_keys")
        return inheritance.lend(spans, found["row"], found, TAG_FIELDS) if found.num_rows else spans

    def _push_down(self, cur: duckdb.DuckDBPyConnection, spans: pa.Table) -> list[tuple[Any, ...]]:
        """The stored spans that waited for a span of this batch take its tags and wait, if it
        does, for what it waits for; the (project, start time, user, tags changed, session) of
        those changed."""
        first_ns = pc.min(spans["start_time"].cast(pa.int64())).as_py()
        since = {"since": datetime.fromtimestamp(first_ns / 1e9, UTC).replace(tzinfo=None) - _CLOCK_SKEW}
        cur.execute(_ARRIVED, since)
        try:
            lo, hi, count = cur.execute(
                "SELECT min(start_time), max(start_time), count(*) FROM arrived"
            ).fetchone()
            if not count:
                return []
            # (bounds as literals: zone maps skip the row groups outside them; a second each
            # side for the nanoseconds a Python datetime drops)
            bounds = {"lo": lo - timedelta(seconds=1), "hi": hi + timedelta(seconds=1)}
            changed = cur.execute(_PUSH_DOWN, bounds).fetchall()
            cur.execute(_WAIT_FURTHER)
            cur.execute(_STOP_WAITING)
            return changed
        finally:
            cur.execute("DROP TABLE arrived")

    def _mark_duplicates(self, cur: duckdb.DuckDBPyConnection, batch: pa.Table) -> list[tuple[Any, ...]]:
        """Set duplicate_of on the LLM spans that record a provider call another span counts,
        and give the counted span the attribution tags only its duplicates carry; the
        (project, start time, user, tags changed[, session]) of the spans changed."""
        # Spans of one call overlap it: they start within an hour of each other (the longest
        # call, and any clock skew between two processes recording it). The bound lets zone
        # maps skip other row groups (as literals: a scalar subquery would plan a nested loop).
        rows = cur.execute(_DUPLICATE_CANDIDATES, _bounds(batch, _SAME_CALL)).fetchall()
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
                    "deployment = c.deployment, attributes = c.attributes "
                    "FROM new_costs c WHERE spans.project_id = ? "
                    "AND spans.trace_id = c.trace_id AND spans.span_id = c.span_id "
                    "RETURNING project_id, start_time::TIMESTAMP, user_id, false",
                    [project_id],
                ).fetchall()
                rollups.recompute(cur, map(Change._make, changed), self._marks)
            finally:
                cur.unregister("new_costs")
        return len(changed)
