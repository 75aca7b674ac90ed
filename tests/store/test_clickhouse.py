"""The ClickHouse store on chDB (the ClickHouse engine in-process): its migrations, identity
dedup, and the span reads built so far giving DuckDB's answers on the same spans."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from tests.builders.random_calls import MODELS, random_call
from tokentrace import sketch
from tokentrace.canonical import HOUR, MINUTE, USER_DAY, USER_HOUR
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.query import rollups
from tokentrace.query.records import records
from tokentrace.store.clickhouse import ClickHouseStore
from tokentrace.store.clickhouse import rollups as ch_rollups
from tokentrace.store.clickhouse.transport import TransportError, connect
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import ScoreCondition, SpanFilter, TraceFilter

START = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, chdb_path):
    """The same 3,000 priced LLM calls over 6 hours in DuckDB and in ClickHouse (chDB)."""
    base = tmp_path_factory.mktemp("stores")
    rng = random.Random(3)
    raws = [random_call(rng, n, START + timedelta(seconds=rng.uniform(0, 6 * 3600))) for n in range(1, 3001)]
    rows = normalize(raws, "default").rows
    price_rows(PriceBook(), rows)
    batch = tables(rows)
    duck = DuckDBStore(base / "t.duckdb")
    ch = ClickHouseStore(connect(f"chdb://{chdb_path}?database=stores"))
    for store in (duck, ch):
        assert store.write_batch(batch, None) == 3000
    yield duck, ch
    duck.close()
    ch.close()


def _rows(table, keys):
    return {tuple(r[k] for k in keys): r for r in records(table)}


@pytest.mark.parametrize(
    ("equals", "group_by", "bucket_seconds", "distinct"),
    [
        ({}, (), None, True),
        ({}, ("tenant_id",), None, True),
        ({"provider": "openai"}, ("request_model", "status"), None, False),
        ({}, ("feature",), 3600, True),
        ({"tenant_id": "acme"}, ("input_bucket",), 600, False),
    ],
)
def test_aggregates_equal_duckdbs(stores, equals, group_by, bucket_seconds, distinct):
    duck, ch = stores
    f = SpanFilter(
        "default", since=START + timedelta(minutes=7), until=START + timedelta(hours=5), equals=equals
    )
    keys = (("bucket",) if bucket_seconds else ()) + group_by
    want = _rows(duck.aggregate(f, group_by, bucket_seconds, distinct), keys)
    got = _rows(ch.aggregate(f, group_by, bucket_seconds, distinct), keys)
    assert got.keys() == want.keys()
    assert len(got) > 1 or not group_by
    for key, row in want.items():
        for name, value in row.items():
            if isinstance(value, float):
                assert got[key][name] == pytest.approx(value, rel=1e-9), (key, name)
            else:
                assert got[key][name] == value, (key, name)


def test_quantiles_equal_duckdbs(stores):
    duck, ch = stores
    f = SpanFilter("default", since=START, until=START + timedelta(hours=6))
    qs = (0.5, 0.95, 0.99)
    for group_by, bucket in ((("request_model",), None), ((), 3600)):
        keys = (("bucket",) if bucket else ()) + group_by
        want = _rows(duck.quantiles(f, group_by, ("duration_ms", "ttft_ms"), qs, bucket), keys)
        got = _rows(ch.quantiles(f, group_by, ("duration_ms", "ttft_ms"), qs, bucket), keys)
        assert got.keys() == want.keys()
        for key, row in want.items():
            assert got[key]["requests"] == row["requests"]
            assert got[key]["duration_ms"] == pytest.approx(row["duration_ms"], rel=1e-9)
            assert got[key]["ttft_ms"] == pytest.approx(row["ttft_ms"], rel=1e-9)
    assert {
        r["request_model"] for r in records(ch.quantiles(f, ("request_model",), ("duration_ms",), qs))
    } == set(MODELS)


def test_a_batch_sent_again_is_stored_once(stores):
    duck, ch = stores
    f = SpanFilter("default")
    assert ch.spans(f, ("trace_id", "span_id"), 10).num_rows == 10
    full = tables(
        normalize([random_call(random.Random(9), 50_001, START + timedelta(hours=1))], "default").rows
    )
    assert ch.write_batch(full, None) == 1
    assert ch.write_batch(full, None) == 0  # the same span again
    doubled = tables(normalize([random_call(random.Random(9), 50_002, START)] * 2, "default").rows)
    assert ch.write_batch(doubled, None) == 1  # twice in one batch
    assert ch.totals("default")["spans"] == 3002
    assert ch.totals("default")["traces"] == duck.totals("default")["traces"] + 2


def test_migrations_apply_once_and_reopen(chdb_path):
    url = f"chdb://{chdb_path}?database=reopened"
    store = ClickHouseStore(connect(url))
    version = store.schema_version()
    store.close()
    reopened = ClickHouseStore(connect(url))
    assert reopened.schema_version() == version >= 1
    assert reopened.totals("default")["spans"] == 0
    reopened.close()


def test_bad_sql_and_bad_urls_are_clear_errors(chdb_path):
    transport = connect(f"chdb://{chdb_path}?database=errors")
    with pytest.raises(TransportError, match="Syntax error"):
        transport.command("SELEC 1")
    transport.close()
    with pytest.raises(ValueError, match="not a ClickHouse URL"):
        connect("postgres://x")
    with pytest.raises(TransportError, match="cannot reach ClickHouse"):
        connect("clickhouse://127.0.0.1:1/db")


def test_a_clickhouse_server_is_queried_without_a_session(monkeypatch):
    """The server's threads query at once (the writer, roll-ups, API requests), and ClickHouse
    refuses a query in a session another is running in: clickhouse-connect's client makes up a
    session unless told not to."""
    import clickhouse_connect

    asked: dict = {}
    monkeypatch.setattr(clickhouse_connect, "get_client", lambda **kwargs: asked.update(kwargs) or object())
    connect("clickhouse://reader:secret@127.0.0.1:8123/traces")
    assert asked["autogenerate_session_id"] is False
    assert (asked["host"], asked["port"], asked["database"], asked["username"]) == (
        "127.0.0.1",
        8123,
        "traces",
        "reader",
    )


@pytest.fixture(scope="module")
def rolled(chdb_path):
    """3,000 calls over 8 hours in ClickHouse, rolled up to 7 h, then a late call at 2:05."""
    rng = random.Random(5)
    store = ClickHouseStore(connect(f"chdb://{chdb_path}?database=rolled"))
    raws = [random_call(rng, n, START + timedelta(seconds=rng.uniform(0, 8 * 3600))) for n in range(1, 3001)]
    rows = normalize(raws, "default").rows
    price_rows(PriceBook(), rows)
    store.write_batch(tables(rows), None)
    store.advance_rollups(START + timedelta(hours=7))
    late = normalize(
        [random_call(rng, 9001, START + timedelta(hours=2, minutes=5, seconds=3))], "default"
    ).rows
    price_rows(PriceBook(), late)
    store.write_batch(tables(late), None)
    # a child without tags, then its parent with them: the child inherits into rolled-up buckets
    at = START + timedelta(hours=3, minutes=1)
    child = random_call(rng, 9002, at, parent=f"{9003:016x}")
    for key in ("tokentrace.tenant_id", "tokentrace.feature", "tokentrace.user_id"):
        child.attributes.pop(key)
    child.trace_id = f"{9003:032x}"
    store.write_batch(tables(normalize([child], "default").rows), None)
    parent = RawSpan(
        f"{9003:032x}",
        f"{9003:016x}",
        "",
        "agent",
        1,
        int(at.timestamp() * 1e9),
        int(at.timestamp() * 1e9) + 10**9,
        0,
        "",
        {"tokentrace.tenant_id": "late-parent", "tokentrace.user_id": "late-user"},
        {},
    )
    store.write_batch(tables(normalize([parent], "default").rows), None)
    # a second instrumentation's span of one provider call, after its minute was rolled up
    for n in (9004, 9005):
        twin = random_call(random.Random(3), n, at, **{"gen_ai.response.id": "resp-twin"})
        rows = normalize([twin], "default").rows
        price_rows(PriceBook(), rows)
        store.write_batch(tables(rows), None)
    yield store
    store.close()


SUMMED = ("requests", "answered", "spans", "input_tokens", "total_tokens", "errors", "retries", "streamed")


@pytest.mark.parametrize(
    ("equals", "group_by", "bucket_seconds"),
    [
        ({}, ("tenant_id",), None),
        ({"provider": "openai"}, ("request_model", "status"), 600),
        ({}, ("tenant_id", "user_id"), None),
        ({"tenant_id": "acme"}, ("user_id",), 7200),
    ],
)
def test_rollups_give_the_spans_numbers(rolled, equals, group_by, bucket_seconds):
    f = SpanFilter(
        "default", since=START + timedelta(seconds=17), until=START + timedelta(hours=8), equals=equals
    )
    grain = rollups.answerable(f, group_by, bucket_seconds)
    parts = rollups.split(f, rolled.rolled_up_until(grain), grain)
    assert parts is not None and len(parts.spans) == 2  # head, rollups and tail all used
    keys = (("bucket",) if bucket_seconds else ()) + group_by
    want = _rows(rolled.aggregate(f, group_by, bucket_seconds, distinct=False), keys)
    got = {tuple(r[k] for k in keys): r for r in rollups.aggregate(rolled, f, group_by, bucket_seconds)}
    assert got.keys() == want.keys()
    for key, row in want.items():
        assert {k: got[key][k] for k in SUMMED} == {k: row[k] for k in SUMMED}, key
        assert got[key]["cost_usd"] == pytest.approx(row["cost_usd"], rel=1e-9)
        assert (got[key]["first_seen"], got[key]["last_seen"]) == (row["first_seen"], row["last_seen"])


def test_a_late_parents_tags_reach_the_rollups(rolled):
    hour = SpanFilter("default", since=START + timedelta(hours=3), until=START + timedelta(hours=4))
    by_user = _rows(
        rolled.rollup_aggregate(hour, ("tenant_id", "user_id"), None, USER_HOUR), ("tenant_id", "user_id")
    )
    assert by_user[("late-parent", "late-user")]["requests"] == 1  # the child, under its inherited tags
    spans = rolled.aggregate(hour, (), None, distinct=False).to_pylist()[0]
    assert sum(r["requests"] for r in by_user.values()) == spans["requests"]  # and not also tag-less


def test_rolling_up_again_counts_once_and_sketches_hold(rolled):
    f = SpanFilter("default", since=START, until=START + timedelta(hours=7))
    before = _rows(rolled.rollup_aggregate(f, ("tenant_id",), None), ("tenant_id",))
    # As after a crash between the insert and the mark: the same minutes rolled up again.
    ch_rollups.advance(rolled._ch, (START - timedelta(minutes=1)).replace(tzinfo=None))
    rolled._ch.command("TRUNCATE TABLE rollup_marks")
    rolled.advance_rollups(START + timedelta(hours=7))
    after = _rows(rolled.rollup_aggregate(f, ("tenant_id",), None), ("tenant_id",))
    assert after.keys() == before.keys()
    for key, row in before.items():
        assert {k: after[key][k] for k in SUMMED} == {k: row[k] for k in SUMMED}
        assert after[key]["cost_usd"] == pytest.approx(row["cost_usd"], rel=1e-12)
    sketched = rollups.quantiles(rolled, f, ("request_model",), ("duration_ms",), (0.5, 0.99), None)
    exact = _rows(rolled.quantiles(f, ("request_model",), ("duration_ms",), (0.5, 0.99)), ("request_model",))
    for row in sketched:
        want = exact[(row["request_model"],)]
        assert row["duration_ms_count"] == want["duration_ms_count"]
        for got_q, want_q in zip(row["duration_ms"], want["duration_ms"], strict=True):
            assert got_q == pytest.approx(want_q, rel=2 * sketch.RELATIVE_ACCURACY)


def test_an_empty_range_reads_as_duckdbs(stores):
    duck, ch = stores
    empty = SpanFilter("default", since=START - timedelta(days=2), until=START - timedelta(days=1))
    assert records(ch.aggregate(empty, (), None)) == records(duck.aggregate(empty, (), None))


@pytest.fixture(scope="module")
def traced(tmp_path_factory, chdb_path):
    """30 agent traces (a root with a session, two chat calls, some failing) in both stores."""
    raws = []
    for n in range(30):
        trace, root = f"{n + 1:032x}", f"{n + 1:08x}{0:08x}"
        at = int((START + timedelta(minutes=n)).timestamp() * 1e9)
        raws.append(
            RawSpan(trace, root, "", f"agent {n % 3}", 1, at, at + 4 * 10**9, 0, "",
                    {"session.id": f"s{n % 5}", "user.id": f"u{n % 4}", "tenant.id": "acme"}, {})
        )  # fmt: skip
        for k in (1, 2):
            call = random_call(random.Random(n * 10 + k), n * 10 + k, START + timedelta(minutes=n, seconds=k))
            call.trace_id, call.parent_span_id = trace, root
            call.attributes.pop("tokentrace.user_id")
            raws.append(call)
    rows = normalize(raws, "default").rows
    price_rows(PriceBook(), rows)
    score = {
        "project_id": "default", "score_id": "x", "trace_id": f"{7:032x}", "span_id": "", "name": "helpful",
        "data_type": "numeric", "value": 0.0, "string_value": None, "comment": None, "source": "api",
        "created_at": START,
    }  # fmt: skip
    duck = DuckDBStore(tmp_path_factory.mktemp("traced") / "t.duckdb")
    ch = ClickHouseStore(connect(f"chdb://{chdb_path}?database=traced"))
    for store in (duck, ch):
        store.write_batch(tables(rows, [], [score]), None)
    yield duck, ch
    duck.close()
    ch.close()


def _same(got: pa.Table, want: pa.Table) -> None:
    got_rows, want_rows = records(got), records(want)
    assert len(got_rows) == len(want_rows) > 0
    for g, w in zip(got_rows, want_rows, strict=True):
        for name, value in w.items():
            if isinstance(value, float):
                assert g[name] == pytest.approx(value, rel=1e-9), name
            elif isinstance(value, list):
                assert sorted(g[name]) == sorted(value), name
            else:
                assert g[name] == value, name


@pytest.mark.parametrize(
    "trace_filter",
    [
        {},
        {"min_cost_usd": 0.01},
        {"errors_only": True},
        {"min_duration_ms": 1000.0},
        {"scores": (ScoreCondition("helpful", "<", 0.5),)},
    ],
)
def test_trace_summaries_equal_duckdbs(traced, trace_filter):
    duck, ch = traced
    f = TraceFilter(SpanFilter("default", since=START), **trace_filter)
    for limit, offset in ((10, 0), (10, 10)):
        want = duck.trace_summaries(f, limit, offset)
        if want.num_rows:
            _same(ch.trace_summaries(f, limit, offset), want)


def test_session_summaries_equal_duckdbs(traced):
    duck, ch = traced
    f = SpanFilter("default", since=START)
    _same(ch.session_summaries(f, 3, 0), duck.session_summaries(f, 3, 0))
    _same(ch.session_summaries(f, 3, 3), duck.session_summaries(f, 3, 3))


def test_a_store_without_hour_and_day_rollups_sums_them_from_its_finer_rows_on_upgrade(chdb_path):
    url = f"chdb://{chdb_path}?database=coarse_upgrade"
    store = ClickHouseStore(connect(url))
    rng = random.Random(11)
    raws = [random_call(rng, n, START + timedelta(seconds=rng.uniform(0, 3 * 86400))) for n in range(1, 601)]
    rows = normalize(raws, "default").rows
    price_rows(PriceBook(), rows)
    store.write_batch(tables(rows), None)
    store.advance_rollups(START + timedelta(days=2, hours=12, minutes=30))
    # each coarse table: its whole buckets, and what its finer table says of them
    checks = [
        (HOUR, MINUTE, ("request_model",), 3600, START + timedelta(days=2, hours=12)),
        (USER_DAY, USER_HOUR, ("user_id",), 86400, START + timedelta(days=2)),
    ]
    wants = []
    for _, finer, keys, seconds, until in checks:
        f = SpanFilter("default", since=START, until=until)
        wants.append(_rows(store.rollup_aggregate(f, keys, seconds, finer), ("bucket", *keys)))
    # Back to schema 4, and the spans gone (the coarse rows can only come from the finer ones).
    for table, version in (("rollup_hour", 5), ("rollup_user_day", 6)):
        store._ch.command(f"DROP TABLE {table}")
        store._ch.command(f"DELETE FROM rollup_marks WHERE grain = '{table}'")
        store._ch.command(f"DELETE FROM schema_migrations WHERE version = {version}")
    store._ch.command("TRUNCATE TABLE spans")
    store.close()

    upgraded = ClickHouseStore(connect(url))
    assert all(upgraded.rolled_up_until(coarse) is None for coarse, *_ in checks)
    upgraded.advance_rollups(START + timedelta(days=2, hours=12, minutes=30))  # the first advance
    for (coarse, _, keys, seconds, until), want in zip(checks, wants, strict=True):
        assert upgraded.rolled_up_until(coarse) == until
        f = SpanFilter("default", since=START, until=until)
        got = _rows(upgraded.rollup_aggregate(f, keys, seconds, coarse), ("bucket", *keys))
        assert got.keys() == want.keys() and len(got) > 2
        for key, row in want.items():
            assert {k: got[key][k] for k in SUMMED} == {k: row[k] for k in SUMMED}, key
    # rolling on from the marks leaves the seeded buckets as they are
    upgraded.advance_rollups(START + timedelta(days=4))
    for (coarse, _, keys, seconds, until), want in zip(checks, wants, strict=True):
        f = SpanFilter("default", since=START, until=until)
        again = _rows(upgraded.rollup_aggregate(f, keys, seconds, coarse), ("bucket", *keys))
        assert {k: r["requests"] for k, r in again.items()} == {k: r["requests"] for k, r in want.items()}
    upgraded.close()
