"""The DuckDB store: migrations, identity dedup, the spool position committed with the data."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa

from tokentrace.canonical import HOUR, MINUTE, SPAN_SCHEMA, USER_HOUR, Tables
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.raw import RawSpan
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import SpanFilter
from tokentrace.store.migrations import migrations


def _spans(
    n: int,
    trace_id: str = "0af7651916cd43dd8448eb211c80319c",
    project: str = "default",
    now: int | None = None,
) -> Tables:
    now = now or time.time_ns()
    raws = [
        RawSpan(
            trace_id,
            f"{i + 1:016x}",
            "",
            f"s{i}",
            1,
            now,
            now + 1000,
            0,
            "",
            {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 10},
            {},
        )
        for i in range(n)
    ]
    return tables(normalize(raws, project).rows)


def test_migrations_apply_once_and_reopen_cleanly(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    version = store.schema_version()
    store.close()
    reopened = DuckDBStore(tmp_path / "t.duckdb")
    assert reopened.schema_version() == version >= 1
    assert [p.project_id for p in reopened.projects()] == ["default"]
    reopened.close()


def test_identity_dedup_and_spool_position(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    now = time.time_ns()
    assert store.write_batch(_spans(3, now=now), (1, 100)) == 3
    assert store.write_batch(_spans(5, now=now), (1, 200)) == 2  # a resend: 3 already there
    # a retry that came before its first copy was written: one batch holds both, stored once
    twice = Tables.concat([_spans(7, now=now), _spans(7, now=now)])
    assert store.write_batch(twice, (1, 300)) == 2
    # the same ids in another project are other spans
    assert store.write_batch(_spans(2, project="other", now=now), (2, 10)) == 2
    assert store.spool_position() == (2, 10)
    assert store.totals("default")["spans"] == 7 and store.totals("other")["spans"] == 2
    # The same ids at another start time are no resend (a resend is the same span): a client
    # that reuses ids has its spans kept, not dropped (DuckDB keeps no index of every key).
    assert store.write_batch(_spans(1, now=now + 5_000_000_000), None) == 1
    assert store.totals("default")["spans"] == 8
    store.close()


def test_filters_are_parameters_not_sql(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    store.write_batch(_spans(2), None)
    hostile = "x' OR '1'='1"
    assert store.spans(SpanFilter("default", equals={"user_id": hostile}), ("span_id",)).num_rows == 0
    assert store.spans(SpanFilter(hostile), ("span_id",)).num_rows == 0
    assert store.spans(SpanFilter("default", name_contains="%"), ("span_id",)).num_rows == 0
    assert store.spans(SpanFilter("default", name_contains="s1"), ("span_id",)).num_rows == 1
    store.close()


def test_schema_matches_the_canonical_span(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    store.write_batch(_spans(1), None)
    exported = pa.Table.from_batches(list(store.export(SpanFilter("default"))))
    assert exported.schema.names == SPAN_SCHEMA.names
    store.close()


def test_a_store_whose_spans_had_a_primary_key_keeps_them_on_upgrade(tmp_path):
    # A store at schema 17: spans keyed by span_key (an index of every key, in memory).
    with duckdb.connect(str(tmp_path / "t.duckdb")) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
        for version, name, sql in migrations("duckdb"):
            if version <= 17:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name])
        conn.execute(
            "INSERT INTO spans (span_key, project_id, trace_id, span_id, parent_span_id, start_time, "
            "end_time, operation, input_tokens) "
            "SELECT md5_number('default:' || t || s), 'default', t, s, '', "
            "TIMESTAMP_NS '2026-12-01 10:00:00', TIMESTAMP_NS '2026-12-01 10:00:01', 'chat', 7 FROM "
            "(SELECT lpad(i::VARCHAR, 32, '1') AS t, lpad(i::VARCHAR, 16, '2') AS s FROM range(3) r(i))"
        )
    store = DuckDBStore(tmp_path / "t.duckdb")
    assert store.totals("default")["spans"] == 3
    with store._conn.cursor() as cur:
        kinds = cur.execute(
            "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
            "WHERE table_name = 'spans'"
        ).fetchall()
    assert ("PRIMARY KEY", ["span_key"]) not in kinds and ("NOT NULL", ["trace_id"]) in kinds
    store.close()


def test_a_store_with_minute_rollups_gains_user_hours_on_upgrade(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    store.write_batch(_spans(4), None)
    now = datetime.now(UTC)
    minute_mark = store.advance_rollups(now + timedelta(hours=2))
    store.close()
    # Back to schema 5: minute rollups with their mark in rollup_state, no user hours.
    with duckdb.connect(str(tmp_path / "t.duckdb")) as conn:
        conn.execute("DROP TABLE rollup_user_hour")
        conn.execute("DROP TABLE rollup_hour")
        conn.execute("DROP TABLE rollup_user_day")
        conn.execute("DROP TABLE rollup_model_hour")
        conn.execute("DROP TABLE retained_traces")
        conn.execute("DROP TABLE sampling_policies")
        conn.execute("DROP TABLE record_tags")
        conn.execute("DROP TABLE inherit_waiting")
        conn.execute("ALTER TABLE rollup_minute DROP COLUMN sampled_out")
        conn.execute("CREATE TABLE rollup_state (id INTEGER PRIMARY KEY, complete_until TIMESTAMP NOT NULL)")
        conn.execute(
            "INSERT INTO rollup_state SELECT 1, complete_until FROM rollup_marks "
            "WHERE grain = 'rollup_minute'"
        )
        conn.execute("DROP TABLE rollup_marks")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 6")

    upgraded = DuckDBStore(tmp_path / "t.duckdb")
    assert upgraded.rolled_up_until(MINUTE) == minute_mark  # carried over
    assert upgraded.rolled_up_until(USER_HOUR) is None
    upgraded.advance_rollups(now + timedelta(hours=2))
    hour_mark = upgraded.rolled_up_until(USER_HOUR)
    assert hour_mark is not None and hour_mark.minute == 0
    # the first advance rolled the user hours up from the oldest span
    rows = upgraded.rollup_aggregate(SpanFilter("default", until=hour_mark), (), None, USER_HOUR).to_pylist()
    assert rows[0]["spans"] == 4
    upgraded.close()


def test_a_store_without_hour_rollups_sums_them_from_its_minutes_on_upgrade(tmp_path):
    store = DuckDBStore(tmp_path / "t.duckdb")
    store.write_batch(_spans(6), None)
    now = datetime.now(UTC)
    store.advance_rollups(now + timedelta(hours=2))
    minute_mark = store.rolled_up_until(MINUTE)
    whole = SpanFilter("default", until=minute_mark)
    want = store.rollup_aggregate(whole, ("request_model",), None, MINUTE).to_pylist()
    store.close()
    # Back to schema 9, and the spans gone (as tail sampling or retention would leave them): the
    # hour rows can only come from the minute rows.
    with duckdb.connect(str(tmp_path / "t.duckdb")) as conn:
        conn.execute("DROP TABLE rollup_hour")
        conn.execute("DELETE FROM rollup_marks WHERE grain = 'rollup_hour'")
        conn.execute("DELETE FROM schema_migrations WHERE version = 10")
        conn.execute("UPDATE rollup_minute SET sampled_out = true")
        conn.execute("DELETE FROM spans")

    upgraded = DuckDBStore(tmp_path / "t.duckdb")
    assert upgraded.rolled_up_until(HOUR) is None
    upgraded.advance_rollups(now + timedelta(hours=2))
    hour_mark = upgraded.rolled_up_until(HOUR)
    assert hour_mark is not None and hour_mark.minute == 0
    got = upgraded.rollup_aggregate(whole, ("request_model",), None, HOUR).to_pylist()
    assert [(r["request_model"], r["spans"], r["input_tokens"]) for r in got] == [
        (r["request_model"], r["spans"], r["input_tokens"]) for r in want
    ]
    assert want[0]["spans"] == 6
    # the next advance leaves the seeded hours alone
    upgraded.advance_rollups(now + timedelta(hours=3))
    assert upgraded.rollup_aggregate(whole, (), None, HOUR).to_pylist()[0]["spans"] == 6
    upgraded.close()


def _many(n: int, first: datetime, seconds_apart: float, seed: int = 0) -> Tables:
    """n LLM call spans of their own traces, `seconds_apart` from `first` on, as columns."""
    start = pa.array(
        [int((first.timestamp() + i * seconds_apart) * 1e9) for i in range(n)], pa.timestamp("ns", tz="UTC")
    )
    given = {
        "project_id": pa.array(["default"] * n),
        "trace_id": pa.array([f"{seed:08x}{i:024x}" for i in range(n)]),
        "span_id": pa.array([f"{i:016x}" for i in range(n)]),
        "parent_span_id": pa.array([""] * n),
        "name": pa.array(["chat m"] * n),
        "operation": pa.array(["chat"] * n),
        "start_time": start,
        "end_time": start,
        "duration_ms": pa.array([float(i % 997) for i in range(n)]),
        "status": pa.array(["ok"] * n),
        "request_model": pa.array(["m"] * n),
        "input_tokens": pa.array([i % 4000 for i in range(n)], pa.int64()),
        "user_id": pa.array([f"user-{i % 500}" for i in range(n)]),
        "attributes": pa.array(['{"gen_ai.request.temperature":0.2}'] * n),
    }
    spans = pa.Table.from_arrays(
        [given.get(f.name, pa.nulls(n, f.type)) for f in SPAN_SCHEMA], schema=SPAN_SCHEMA
    )
    empty = tables([])
    return Tables(spans, empty.content, empty.scores)


def _row_groups(store: DuckDBStore) -> int:
    with store._conn.cursor() as cur:
        return cur.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('spans')"
        ).fetchall()[0][0]


def _used_blocks(store: DuckDBStore) -> int:
    with store._conn.cursor() as cur:
        return cur.execute("SELECT used_blocks FROM pragma_database_size()").fetchall()[0][0]


def test_writes_leave_row_groups_part_filled_and_compacting_merges_them(tmp_path):
    """Writes' own checkpoints do not vacuum (it rewrote the same rows again and again, more
    so as the table grew); the hourly compaction merges what they left."""
    store = DuckDBStore(tmp_path / "t.duckdb")
    first = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(6):
        store.write_batch(_many(20_000, first + timedelta(hours=n), 0.1, seed=n), None)
        store._writer.execute("CHECKPOINT")  # as the write-ahead log's threshold does
    assert _row_groups(store) == 6  # one part-filled group a checkpoint, none merged
    store.write_batch(_many(20_000, first + timedelta(hours=6), 0.1, seed=6), None)
    store.compact()
    assert _row_groups(store) == 2  # 140,000 rows: 122,880 and the rest
    assert store.totals("default")["spans"] == 140_000
    store.close()


def test_retention_frees_the_blocks_of_what_it_deleted(tmp_path):
    """DuckDB vacuums deletes only at the checkpoint that persists them: retention's delete
    checkpoints with vacuum on, so the space of what it deleted is reused, not kept for good."""
    store = DuckDBStore(tmp_path / "t.duckdb")
    first = datetime(2026, 11, 1, tzinfo=UTC)
    store.write_batch(_many(300_000, first, 0.5), None)  # ~42 hours
    store._writer.execute("CHECKPOINT")
    groups, blocks = _row_groups(store), _used_blocks(store)
    deleted = store.delete_before(first + timedelta(hours=30))
    assert deleted["spans"] == 216_000
    assert _row_groups(store) < groups
    assert _used_blocks(store) < blocks * 0.7
    assert store.totals("default")["spans"] == 84_000
    store.close()


def test_a_store_from_before_trace_hours_finds_its_traces_on_upgrade(tmp_path):
    """Migration 0022 fills trace_hours from the stored spans: a trace written before it is found."""
    store = DuckDBStore(tmp_path / "t.duckdb")
    store.write_batch(_spans(3, trace_id="1" * 32), None)
    store.close()
    with duckdb.connect(str(tmp_path / "t.duckdb")) as conn:
        conn.execute("DROP TABLE trace_hours")
        conn.execute("DELETE FROM schema_migrations WHERE version = 22")
    upgraded = DuckDBStore(tmp_path / "t.duckdb")
    assert upgraded.trace_spans("default", "1" * 32).num_rows == 3
    upgraded.close()
