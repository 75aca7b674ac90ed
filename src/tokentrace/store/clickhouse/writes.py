"""Writes to ClickHouse without transactions: identities already stored are skipped (replaying a
spool is safe), tags inherited and duplicates marked by writing a higher revision, costs set
the same way."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import (
    FIELD_NAMES,
    INHERITED_FIELDS,
    LLM_OPERATIONS,
    SPAN_SCHEMA,
    TAG_FIELDS,
    Tables,
)
from tokentrace.store import duplicates
from tokentrace.store.clickhouse import duplicates as dup
from tokentrace.store.clickhouse.connection import SPANS
from tokentrace.store.clickhouse.dialect import time64
from tokentrace.store.clickhouse.rollups import SETTINGS
from tokentrace.store.record_tags import record_tags

_TAGS = ", ".join(INHERITED_FIELDS)
_SPAN_PLACE = ["project_id", "trace_id", "span_id", "start_time"]


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


# Tags that came on a span's log records (ingest/logs.py) are the span's own: the spans of the
# batch's traces that lack one their records carry come back whole with it, as a new revision.
_TAGS_FROM_RECORDS = f"""
WITH r AS (
    SELECT project_id, trace_id, span_id, {", ".join(f"any({t}) AS record_{t}" for t in TAG_FIELDS)}
    FROM record_tags WHERE has({{traces:Array(String)}}, trace_id)
    GROUP BY project_id, trace_id, span_id
)
SELECT {
    ", ".join(
        f"coalesce(s.{n}, record_{n}) AS {n}" if n in TAG_FIELDS else f"s.{n} AS {n}" for n in FIELD_NAMES
    )
}
FROM spans AS s FINAL
INNER JOIN r ON s.project_id = r.project_id AND s.trace_id = r.trace_id AND s.span_id = r.span_id
WHERE has({{traces:Array(String)}}, s.trace_id) AND s.start_time >= {_WEEK_BEFORE}
  AND ({" OR ".join(f"(s.{t} IS NULL AND record_{t} IS NOT NULL)" for t in TAG_FIELDS)})
"""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _start_bounds(spans: pa.Table) -> tuple[datetime, datetime]:
    """The first and last start time of a batch, to the microsecond parameters carry: the
    first rounded down, the last up."""
    bounds = pc.min_max(spans["start_time"].cast(pa.int64()))
    low, high = bounds["min"].as_py() // 1000, -(-bounds["max"].as_py() // 1000)
    return _EPOCH + timedelta(microseconds=low), _EPOCH + timedelta(microseconds=high)


def _usage_params(llm: pa.Table) -> dict[str, list]:
    """The distinct (provider, input tokens, output tokens or -1) of the batch's calls with
    usage, as three parallel arrays (dup.CANDIDATES zips them into a set)."""
    usage = llm.filter(pc.is_valid(llm["input_tokens"]))
    usage = (
        pa.table(
            {
                "provider": usage["provider"].cast(pa.string()),
                "input": usage["input_tokens"].cast(pa.int64()),
                "output": pc.fill_null(usage["output_tokens"].cast(pa.int64()), -1),
            }
        )
        .group_by(["provider", "input", "output"])
        .aggregate([])
    )
    return {
        "usage_providers": usage["provider"].to_pylist(),
        "usage_inputs": usage["input"].to_pylist(),
        "usage_outputs": usage["output"].to_pylist(),
    }


class ClickHouseWrites:
    """SpanWriter's writes (retention's deletes are in catalog.py, beside the projects)."""

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
        tagged = record_tags(tables.content)
        if tagged.num_rows:
            self._ch.insert("record_tags", tagged)
        if spans.num_rows:
            spans = self._unseen(spans)
            new = spans.num_rows
            if new:
                self._insert_spans(spans)
        if new or tagged.num_rows:
            # The spans the batch wrote or holds tags for: their traces inherit again.
            places = pa.concat_tables([spans.select(_SPAN_PLACE), tagged.select(_SPAN_PLACE)])
            from_records = self._revise(_TAGS_FROM_RECORDS, places)
            inherited = self._revise(_INHERIT_TAGS, places)
            revised, lent = self._mark_duplicates(spans)
            self._recompute_late(
                [
                    (spans, False),
                    (from_records, True),
                    (inherited, True),
                    (revised.filter(lent), True),
                    (revised.filter(pc.invert(lent)), False),
                ]
            )
        if tables.content.num_rows:
            revision = pa.array([time.time_ns()] * tables.content.num_rows, pa.uint64())
            content = tables.content.drop_columns(list(TAG_FIELDS))  # kept in record_tags
            self._ch.insert("content_parts", content.append_column("revision", revision))
        if tables.scores.num_rows:
            self._ch.insert("scores", tables.scores)
        if spool_position is not None:  # after the data: a crash before it replays, harmlessly
            self._ch.command(
                "INSERT INTO spool_positions VALUES ({node:String}, {s:Int64}, {o:Int64}, {u:UInt64})",
                {"node": self.node, "s": spool_position[0], "o": spool_position[1], "u": time.time_ns()},
            )
        return new

    def update_costs(self, project_id: str, costs: pa.Table) -> int:
        """New prices for stored spans (trace_id, span_id, cost_usd, cost_known, deployment,
        attributes), each a newer revision; the buckets they fall in rolled up again."""
        if not costs.num_rows:
            return 0
        keys = pc.binary_join_element_wise(costs["trace_id"], costs["span_id"], ":")
        stored = self._ch.query(
            f"SELECT concat(trace_id, ':', span_id) AS key, {', '.join(FIELD_NAMES)} FROM {SPANS} "
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
        for name in ("cost_usd", "cost_known", "deployment", "attributes"):
            values = pc.take(costs[name], at).cast(SPAN_SCHEMA.field(name).type)
            stored = stored.set_column(stored.schema.get_field_index(name), name, values)
        revised = stored.select(list(FIELD_NAMES)).cast(SPAN_SCHEMA)
        self._insert_spans(revised)
        self._recompute_late([(revised, False)])
        return revised.num_rows

    def _insert_spans(self, spans: pa.Table) -> None:
        revision = pa.array([time.time_ns()] * spans.num_rows, pa.uint64())
        self._ch.insert("spans", spans.append_column("revision", revision))

    def _revise(self, sql: str, places: pa.Table) -> pa.Table:
        """Write a new revision of every span of the traces in `places` that `sql` (tags from log
        records, or inherited) gives new tags; those spans."""
        first, _ = _start_bounds(places)
        params = {"traces": pc.unique(places["trace_id"]).to_pylist(), "lo": time64(first)}
        changed = self._ch.query(sql + SETTINGS, params)
        if changed.num_rows:
            self._insert_spans(changed.cast(SPAN_SCHEMA))
        return changed

    def _mark_duplicates(self, batch: pa.Table) -> tuple[pa.Table, pa.Array]:
        """Set duplicate_of on the LLM spans that record a provider call another span counts
        (store/duplicates.py decides), lending the counted span the tags only its duplicates
        carry, each as a newer revision; the revised spans, and for each whether its tags changed."""
        nothing = (SPAN_SCHEMA.empty_table(), pa.array([], pa.bool_()))
        if not batch.num_rows:
            return nothing
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
            **_usage_params(llm),
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
