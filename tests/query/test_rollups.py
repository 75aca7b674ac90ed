"""Per-minute rollups (on both stores) answer long ranges: the same numbers as the spans (to the cent, and
percentiles within the sketch's 1%), kept exact when spans of rolled-up minutes arrive late,
lend tags late, turn out to be duplicates or are repriced."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import pyarrow as pa
import pytest

from tests.builders.random_calls import MODELS, random_call, to_ns
from tokentrace import sketch
from tokentrace.canonical import ERROR_TYPES, HOUR, MINUTE, MODEL_HOUR, USER_DAY, USER_HOUR
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.query import aggregates, rollups
from tokentrace.query.records import records
from tokentrace.store.clickhouse import ClickHouseStore
from tokentrace.store.clickhouse.transport import connect
from tokentrace.store.duckdb import DuckDBStore
from tokentrace.store.filters import SpanFilter

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
HOURS = 8


_BOOK = PriceBook()


def _write(store, raws: list[RawSpan]) -> None:
    rows = normalize(raws, "default").rows
    price_rows(_BOOK, rows)
    store.write_batch(tables(rows), None)


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def store(request, tmp_path_factory, chdb_path):
    rng = random.Random(7)
    if request.param == "duckdb":
        store = DuckDBStore(tmp_path_factory.mktemp("rollups") / "t.duckdb")
    else:
        store = ClickHouseStore(connect(f"chdb://{chdb_path}?database=query_rollups"))
    seconds = HOURS * 3600
    raws = [random_call(rng, n, START + timedelta(seconds=rng.uniform(0, seconds))) for n in range(1, 6001)]
    _write(store, raws)
    store.advance_rollups(START + timedelta(hours=HOURS - 1))  # the last hour stays in spans only
    # After the minutes are rolled up, each of these changes spans in them:
    late = START + timedelta(hours=2, minutes=5, seconds=30)
    # a late call
    _write(store, [random_call(rng, 10_001, late)])
    # a child arriving first without tags, then its parent with them (the child inherits)
    child = random_call(rng, 10_002, late, parent=f"{10_003:016x}")
    for key in ("tokentrace.tenant_id", "tokentrace.feature", "tokentrace.user_id"):
        child.attributes.pop(key)
    child.trace_id = f"{10_003:032x}"
    _write(store, [child])
    parent = RawSpan(
        f"{10_003:032x}",
        f"{10_003:016x}",
        "",
        "agent",
        1,
        to_ns(late),
        to_ns(late) + 10**9,
        0,
        "",
        {
            "tokentrace.tenant_id": "late-parent",
            "tokentrace.feature": "agent",
            "tokentrace.user_id": "late-user",
        },
        {"service.name": "support-bot"},
    )
    _write(store, [parent])
    # a second instrumentation's span of the same provider call (counted once)
    twin = random_call(random.Random(3), 10_004, late, **{"gen_ai.response.id": "resp-twin"})
    again = random_call(random.Random(3), 10_005, late, **{"gen_ai.response.id": "resp-twin"})
    _write(store, [twin])
    _write(store, [again])
    # a repricing of one span in a rolled-up minute
    first = store.spans(SpanFilter("default", until=START + timedelta(hours=1)), ("trace_id", "span_id"), 1)
    store.update_costs(
        "default",
        pa.table(
            {
                "trace_id": first["trace_id"],
                "span_id": first["span_id"],
                "cost_usd": pa.array([12.345]),
                "cost_known": pa.array([True]),
                "deployment": pa.array([None], pa.string()),
                "attributes": pa.array(["{}"]),
            }
        ),
    )
    yield store
    store.close()


def _spans_answer(store, f, group_by=(), bucket_seconds=None):
    return records(store.aggregate(f, group_by, bucket_seconds, distinct=False))


def _key(row, group_by, bucketed):
    return ((row["bucket"],) if bucketed else ()) + tuple(row[g] for g in group_by)


SUMMED = (
    "requests",
    "answered",
    "spans",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "errors",
    "unpriced_spans",
    "retries",
    "retry_tokens",
    "truncated",
    "streamed",
    *(f"errors_{t}" for t in ERROR_TYPES),
)


@pytest.mark.parametrize(
    ("equals", "group_by", "bucket_seconds"),
    [
        ({}, (), None),
        ({}, ("tenant_id",), None),
        ({"tenant_id": "acme"}, ("request_model", "status"), None),
        ({}, ("feature",), 3600),
        ({"provider": "openai"}, (), 600),
        # hourly per-user rollups
        ({}, ("tenant_id", "user_id"), None),
        ({"tenant_id": "acme"}, ("user_id",), 7200),
        ({"user_id": "u3"}, ("status", "error_type"), 3600),
    ],
)
def test_rollups_and_spans_give_the_same_numbers(store, equals, group_by, bucket_seconds):
    # Not minute-aligned at the start (a partial minute from spans) and past the rolled-up mark
    # at the end (the last hour from spans).
    f = SpanFilter(
        "default", since=START + timedelta(seconds=17), until=START + timedelta(hours=HOURS), equals=equals
    )
    grain = rollups.answerable(f, group_by, bucket_seconds)
    assert grain is (USER_HOUR if "user_id" in (*equals, *group_by) else MINUTE)
    parts = rollups.split(f, store.rolled_up_until(grain), grain)
    assert parts is not None and len(parts.spans) == 2  # head, rollups, tail: all three used
    reads = [g for g, _ in rollups.by_grain(store, parts.rollups, grain, group_by, bucket_seconds)]
    if grain is MINUTE and (bucket_seconds or 0) % 3600 == 0:
        # whole hours from an hourly table, the first hour's minutes (from 00:01) from minutes;
        # by model, from the hours kept by fewer keys
        narrow = {*equals, *group_by} <= set(MODEL_HOUR.keys)
        assert reads == [MODEL_HOUR if narrow else HOUR, MINUTE]
    else:
        assert reads == [grain]
    from_rollups = rollups.aggregate(store, f, group_by, bucket_seconds)
    assert from_rollups is not None
    bucketed = bucket_seconds is not None
    expected = {_key(r, group_by, bucketed): r for r in _spans_answer(store, f, group_by, bucket_seconds)}
    got = {_key(r, group_by, bucketed): r for r in from_rollups}
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        row = got[key]
        assert {k: row[k] for k in SUMMED} == {k: want[k] for k in SUMMED}, key
        assert round(row["cost_usd"], 2) == round(want["cost_usd"], 2)
        assert abs(row["cost_usd"] - want["cost_usd"]) < 1e-9 * max(1.0, want["cost_usd"])
        assert (row["first_seen"], row["last_seen"]) == (want["first_seen"], want["last_seen"])


@pytest.mark.parametrize(
    ("group_by", "bucket_seconds"), [((), None), (("tenant_id",), None), (("feature",), 3600)]
)
def test_rollup_reads_count_traces_sessions_and_users_from_spans(store, group_by, bucket_seconds):
    """Totals from rollups, distinct counts from spans (ungrouped too: one row), rates over both."""
    f = SpanFilter("default", since=START + timedelta(seconds=17), until=START + timedelta(hours=HOURS))
    assert rollups.aggregate(store, f, group_by, bucket_seconds) is not None  # rollups answer it
    bucketed = bucket_seconds is not None
    spans = {
        _key(r, group_by, bucketed): r for r in records(store.aggregate(f, group_by, bucket_seconds, True))
    }
    rows = aggregates.rollup(store, f, group_by, bucket_seconds)
    assert len(rows) == len(spans) and (group_by or len(rows) == 1)
    for row in rows:
        want = spans[_key(row, group_by, bucketed)]
        assert (row["traces"], row["sessions"], row["users"]) == (
            want["traces"],
            want["sessions"],
            want["users"],
        )
        assert row["traces"] > 0 and row["cost_per_trace"] == pytest.approx(row["cost_usd"] / row["traces"])
        assert row["error_rate"] == pytest.approx(row["errors"] / row["requests"])
        assert "errors_by_type" in row and not any(
            k.startswith("errors_") and k != "errors_by_type" for k in row
        )


def test_late_changes_to_rolled_up_minutes_are_in_the_rollups(store):
    minute = START + timedelta(hours=2, minutes=5)
    f = SpanFilter("default", since=minute, until=minute + timedelta(minutes=1))
    only_rollups = records(store.rollup_aggregate(f, ("tenant_id",), None))
    by_tenant = {r["tenant_id"]: r for r in only_rollups}
    assert "late-parent" in by_tenant  # the child's inherited tag, lent after its minute was rolled up
    hour = SpanFilter(
        "default", since=minute.replace(minute=0), until=minute.replace(minute=0) + timedelta(hours=1)
    )
    by_user = records(store.rollup_aggregate(hour, ("tenant_id", "user_id"), None, USER_HOUR))
    # the child counted once: under the user it inherited, no longer under no user
    assert sum(r["requests"] for r in by_user) == _spans_answer(store, hour)[0]["requests"]
    assert {"tenant_id": "late-parent", "user_id": "late-user"} in [
        {"tenant_id": r["tenant_id"], "user_id": r["user_id"]} for r in by_user
    ]
    assert {r["requests"] for r in _spans_answer(store, f)} == {sum(r["requests"] for r in only_rollups)}
    # and in the hour's row summed from its minutes
    by_tenant_hour = records(store.rollup_aggregate(hour, ("tenant_id",), None, HOUR))
    from_minutes = records(store.rollup_aggregate(hour, ("tenant_id",), None, MINUTE))
    assert sorted((r["tenant_id"] or "", r["requests"], r["input_tokens"]) for r in by_tenant_hour) == sorted(
        (r["tenant_id"] or "", r["requests"], r["input_tokens"]) for r in from_minutes
    )
    repriced = SpanFilter("default", since=START, until=START + timedelta(hours=1))
    for grain in (MINUTE, HOUR):
        assert records(store.rollup_aggregate(repriced, (), None, grain))[0]["cost_usd"] == pytest.approx(
            _spans_answer(store, repriced)[0]["cost_usd"]
        )
    assert _spans_answer(store, repriced)[0]["cost_usd"] > 12.345 + 1  # the other spans are priced too


def test_percentiles_from_sketches_are_within_the_stated_error(store):
    f = SpanFilter("default", since=START, until=START + timedelta(hours=HOURS))
    sketched = rollups.quantiles(
        store, f, ("request_model",), ("duration_ms", "ttft_ms"), (0.5, 0.95, 0.99), None
    )
    assert sketched is not None
    calls = store.spans(f, ("request_model", "duration_ms", "duplicate_of")).to_pylist()
    values = {
        model: sorted(
            c["duration_ms"] for c in calls if c["request_model"] == model and not c["duplicate_of"]
        )
        for model in MODELS
    }
    for row in sketched:
        ordered = values[row["request_model"]]
        assert row["duration_ms_count"] == len(ordered)
        for q, got in zip((0.5, 0.95, 0.99), row["duration_ms"], strict=True):
            position = q * (len(ordered) - 1)
            low, high = ordered[int(position)], ordered[min(int(position) + 1, len(ordered) - 1)]
            a = sketch.RELATIVE_ACCURACY
            assert low * (1 - a) <= got <= high * (1 + a), (row["request_model"], q)
    # aggregates.latency uses the sketches for a range this long, and the spans for a short one
    assert aggregates.latency(store, f, ("request_model",))[0]["duration_ms"]["p50"] in {
        r["duration_ms"][0] for r in sketched
    }
    # per hour, ungrouped: each hour's median within the sketch's error of the spans' median
    hourly = rollups.quantiles(store, f, (), ("duration_ms",), (0.5,), 3600)
    exact = records(store.quantiles(f, (), ("duration_ms",), (0.5,), 3600))
    assert [r["bucket"] for r in hourly] == [r["bucket"] for r in exact] and len(hourly) == HOURS
    for got, want in zip(hourly, exact, strict=True):
        error = 2 * sketch.RELATIVE_ACCURACY
        assert got["duration_ms"][0] == pytest.approx(want["duration_ms"][0], rel=error)
    short = SpanFilter("default", since=START, until=START + timedelta(hours=1))
    assert rollups.quantiles(store, short, (), ("duration_ms",), (0.5,), None) is None


def test_percentiles_past_the_histograms_bound_are_read_by_sorting_the_cells(store, monkeypatch):
    f = SpanFilter("default", since=START, until=START + timedelta(hours=HOURS))
    read = partial(
        rollups.quantiles, store, f, ("request_model",), ("duration_ms", "ttft_ms"), (0.5, 0.99), 3600
    )

    def in_order(rows: list[dict]) -> list[dict]:  # within an hour, a store lists models in any order
        return sorted(rows, key=lambda r: (r["bucket"], r["request_model"]))

    laid_out = in_order(read())
    monkeypatch.setattr(sketch, "DENSE_CELLS", 0)
    assert in_order(read()) == laid_out and len(laid_out) == HOURS * len(MODELS)


def test_groups_of_many_keys_are_renumbered_before_their_codes_overflow(monkeypatch):
    """Rows with equal keys share a group (nulls equal), in the order of their keys' codes,
    however many keys there are: with the combined code renumbered at every key past the first."""
    table = pa.table(
        {
            "bucket": [3, 1, 3, 1, 2, 3, None, 3],
            "model": ["a", "b", "a", "b", None, "a", "c", "a"],
            "tenant": ["x", "y", "x", "y", "x", "z", "x", "x"],
        }
    )
    keys = ["bucket", "model", "tenant"]
    wide = rollups._group_codes(table, keys)
    monkeypatch.setattr(rollups, "COMBINED_MOST", 2)
    renumbered = rollups._group_codes(table, keys)
    for groups, first in (wide, renumbered):
        rows = list(zip(*(table[k].to_pylist() for k in keys), strict=True))
        assert len(set(groups)) == len(set(rows)) == len(first) == 5
        assert all((groups[i] == groups[j]) == (rows[i] == rows[j]) for i in range(8) for j in range(8))
        assert [rows[i] for i in first] == [rows[i] for i in sorted(first, key=lambda i: groups[i])]
    assert wide[0].tolist() == renumbered[0].tolist() and wide[1].tolist() == renumbered[1].tolist()


def test_what_rollups_do_not_hold_goes_to_spans(store):
    f = SpanFilter("default", since=START, until=START + timedelta(hours=HOURS))
    assert rollups.aggregate(store, f, ("user_id", "request_model"), None) is None
    assert (
        rollups.aggregate(store, SpanFilter("default", since=START, equals={"user_id": "u1"}), (), 600)
        is None
    )
    assert (
        rollups.aggregate(store, SpanFilter("default", since=START, name_contains="chat"), (), None) is None
    )
    assert rollups.aggregate(store, f, (), 90) is None
    # and analytics still answers them, from spans
    assert aggregates.rollup(store, f, ("user_id", "request_model"), distinct=False)


def test_hour_rows_are_the_sums_of_their_minutes_sketches_included(store):
    f = SpanFilter("default", since=START, until=store.rolled_up_until(HOUR))
    keys = ("request_model", "tenant_id", "status")
    minutes = records(store.rollup_aggregate(f, keys, 3600, MINUTE))
    hours = records(store.rollup_aggregate(f, keys, 3600, HOUR))
    assert len(hours) == len(minutes) > HOURS
    by_key = {_key(r, keys, True): r for r in minutes}
    for row in hours:
        want = by_key[_key(row, keys, True)]
        assert {k: row[k] for k in SUMMED} == {k: want[k] for k in SUMMED}
        assert row["cost_usd"] == pytest.approx(want["cost_usd"])
    by_model = ("request_model", "status")
    minutes = records(store.rollup_aggregate(f, by_model, 3600, MINUTE))
    for grain in (HOUR, MODEL_HOUR):
        hours = {
            _key(r, by_model, True): r for r in records(store.rollup_aggregate(f, by_model, 3600, grain))
        }
        assert hours.keys() == {_key(r, by_model, True) for r in minutes}
        for want in minutes:
            assert {k: hours[_key(want, by_model, True)][k] for k in SUMMED} == {k: want[k] for k in SUMMED}
    for measure in ("duration_ms", "ttft_ms"):
        sketches = [
            _merged(
                store.sketch([(grain, f)], ("request_model",), (measure,), 3600), ("bucket", "request_model")
            )
            for grain in (MINUTE, HOUR, MODEL_HOUR)
        ]
        assert sketches[0] == sketches[1] == sketches[2] and sketches[0]
        # and a range's parts (hours, minutes, spans) merge to the whole range's sketch
        half = f.since + timedelta(hours=3)
        hours = replace(f, until=half)
        minutes, spans = (
            replace(f, since=half, until=half + timedelta(hours=1)),
            replace(f, since=half + timedelta(hours=1)),
        )
        parts = _merged(
            store.sketch([(HOUR, hours), (MINUTE, minutes), (None, spans)], (), (measure,), None), ()
        )
        whole = _merged(store.sketch([(None, f)], (), (measure,), None), ())
        assert parts == whole and len(whole[()]) > 10


def _merged(table, keys: tuple[str, ...]) -> dict[tuple, dict[int, int]]:
    """The store's sketch rows (a group may come in several rows, a bucket repeated) as one
    histogram per group: {keys: {bucket index: count}}, empty groups left out."""
    merged: dict[tuple, Counter] = {}
    for row in table.to_pylist():
        cell = merged.setdefault(tuple(row[k] for k in keys), Counter())
        for index, count in zip(row["sketch_index"] or (), row["count"] or (), strict=True):
            cell[index] += count
    return {key: dict(cell) for key, cell in merged.items() if cell}


@pytest.fixture(scope="module", params=["duckdb", "clickhouse"])
def days(request, tmp_path_factory, chdb_path):
    """1,500 calls over four days, rolled up to the middle of the fourth."""
    rng = random.Random(17)
    if request.param == "duckdb":
        store = DuckDBStore(tmp_path_factory.mktemp("days") / "t.duckdb")
    else:
        store = ClickHouseStore(connect(f"chdb://{chdb_path}?database=query_days"))
    raws = [random_call(rng, n, START + timedelta(seconds=rng.uniform(0, 4 * 86400))) for n in range(1, 1501)]
    _write(store, raws)
    store.advance_rollups(START + timedelta(days=3, hours=12))
    yield store
    store.close()


def test_cost_per_user_over_days_reads_whole_days_and_hours_at_the_edges(days):
    assert days.rolled_up_until(USER_DAY) == START + timedelta(days=3)
    # A late call by a user in a rolled-up day, and a child that inherits its user from a parent
    # arriving after it: both reach that day's rows.
    late = START + timedelta(days=1, hours=5)
    _write(days, [random_call(random.Random(1), 5001, late, **{"tokentrace.user_id": "late-user"})])
    child = random_call(random.Random(2), 5002, late, parent=f"{5003:016x}")
    child.attributes.pop("tokentrace.user_id")
    child.trace_id = f"{5003:032x}"
    _write(days, [child])
    parent = RawSpan(
        f"{5003:032x}", f"{5003:016x}", "", "agent", 1, to_ns(late), to_ns(late) + 10**9, 0, "",
        {"tokentrace.user_id": "late-parent"}, {},
    )  # fmt: skip
    _write(days, [parent])
    f = SpanFilter("default", since=START + timedelta(hours=5, seconds=17), until=START + timedelta(days=4))
    parts = rollups.split(f, days.rolled_up_until(USER_HOUR), USER_HOUR)
    assert parts is not None
    reads = rollups.by_grain(days, parts.rollups, USER_HOUR, ("user_id",), None)
    assert [g for g, _ in reads] == [USER_DAY, USER_HOUR, USER_HOUR]  # days 2-3; hours of day 1 and 4
    for group_by, bucket in ((("user_id",), None), (("tenant_id", "status"), 86400)):
        got = {_key(r, group_by, bucket is not None): r for r in rollups.aggregate(days, f, group_by, bucket)}
        want = {_key(r, group_by, bucket is not None): r for r in _spans_answer(days, f, group_by, bucket)}
        assert got.keys() == want.keys()
        for key, row in want.items():
            assert {k: got[key][k] for k in SUMMED} == {k: row[k] for k in SUMMED}, key
            assert got[key]["cost_usd"] == pytest.approx(row["cost_usd"], rel=1e-9)
    day = SpanFilter("default", since=START + timedelta(days=1), until=START + timedelta(days=2))
    by_user = {r["user_id"]: r for r in records(days.rollup_aggregate(day, ("user_id",), None, USER_DAY))}
    assert by_user["late-user"]["requests"] == 1
    assert by_user["late-parent"]["requests"] == 1  # the child, under the user it inherited
    assert sum(r["requests"] for r in by_user.values()) == _spans_answer(days, day)[0]["requests"]


def test_grouped_quantiles_equal_one_sketch_at_a_time():
    rng = random.Random(5)
    groups = []
    for _ in range(40):
        values = [rng.lognormvariate(6, 1.5) for _ in range(rng.randint(1, 300))] + [0.0] * rng.randint(0, 3)
        counts: dict[int, int] = {}
        for v in values:
            counts[sketch.index_of(v)] = counts.get(sketch.index_of(v), 0) + 1
        groups.append(sorted(counts.items()))
    qs = (0.0, 0.5, 0.95, 0.99, 1.0)
    indexes = np.array([i for g in groups for i, _ in g])
    counts = np.array([n for g in groups for _, n in g])
    totals, values = sketch.grouped_quantiles(indexes, counts, np.array([len(g) for g in groups]), qs)
    for group, total, row in zip(groups, totals.tolist(), values.tolist(), strict=True):
        assert total == sum(n for _, n in group)
        assert row == pytest.approx(sketch.quantiles(group, qs), rel=1e-12)


def test_sketch_quantiles_interpolate_like_quantile_cont():
    values = [1.0, 2.0, 4.0, 8.0, 100.0]
    counts: dict[int, int] = {}
    for v in values:
        counts[sketch.index_of(v)] = counts.get(sketch.index_of(v), 0) + 1
    for q in (0.0, 0.25, 0.5, 0.9, 1.0):
        exact = aggregates.quantile(values, q)
        assert sketch.quantiles(counts.items(), [q])[0] == pytest.approx(exact, rel=sketch.RELATIVE_ACCURACY)
    assert sketch.quantiles([], [0.5]) == [None]
    assert sketch.value_of(sketch.index_of(0.0)) == 0.0


def test_cells_in_any_order_and_repeated_merge_to_each_groups_sketch():
    """A store may hand a group's cells in several rows, unsorted, a bucket repeated."""
    rng = random.Random(11)
    sketches = [
        {sketch.index_of(rng.lognormvariate(5, 1)): rng.randint(1, 9) for _ in range(rng.randint(1, 60))}
        for _ in range(25)
    ]
    cells = []  # (group, index, count): each group's counts split into 1-3 parts, shuffled
    for group, counts in enumerate(sketches):
        for index, n in counts.items():
            parts = rng.randint(1, min(3, n))
            cells += [(group, index, n // parts + (k < n % parts)) for k in range(parts)]
    rng.shuffle(cells)
    groups, indexes, counts = (np.array(column) for column in zip(*cells, strict=True))
    merged_indexes, merged_counts, lengths = sketch.merge_cells(groups, indexes, counts, len(sketches))
    at = 0
    for counts_of_group, length in zip(sketches, lengths.tolist(), strict=True):
        mine = slice(at, at + length)
        got = list(zip(merged_indexes[mine].tolist(), merged_counts[mine].tolist(), strict=True))
        assert got == sorted(counts_of_group.items())
        at += length


def test_dense_quantiles_of_cells_in_any_order_equal_each_groups_sketch(monkeypatch):
    """The cells as a store hands them (split, shuffled, the zero bucket among them) read through
    one groups-by-buckets histogram give each group's own quantiles; past the histogram's bound it
    declines (None) and the caller sorts the cells instead."""
    rng = random.Random(17)
    sketches = []
    for _ in range(30):
        values = [rng.lognormvariate(5, 2) for _ in range(rng.randint(1, 200))] + [0.0] * rng.randint(0, 2)
        counts: dict[int, int] = {}
        for v in values:
            counts[sketch.index_of(v)] = counts.get(sketch.index_of(v), 0) + 1
        sketches.append(counts)
    cells = [(g, i, n) for g, counts in enumerate(sketches) for i, n in counts.items()]
    cells += [(g, i, 1) for g, i, _ in rng.sample(cells, 40)]  # a bucket repeated in another row
    for g, i, _ in cells[-40:]:
        sketches[g][i] += 1
    rng.shuffle(cells)
    groups, indexes, counts = (np.array(column) for column in zip(*cells, strict=True))
    qs = (0.0, 0.5, 0.95, 0.99, 1.0)
    totals, values = sketch.dense_quantiles(groups, indexes.astype(np.int16), counts, len(sketches), qs)
    for counts_of_group, total, row in zip(sketches, totals.tolist(), values.tolist(), strict=True):
        assert total == sum(counts_of_group.values())
        assert row == pytest.approx(sketch.quantiles(counts_of_group.items(), qs), rel=1e-12)
    # every value in the zero bucket
    zero_bucket = np.array([sketch.ZERO_BUCKET] * 2, np.int16)
    totals, values = sketch.dense_quantiles(np.array([0, 1]), zero_bucket, np.array([3, 2]), 2, qs)
    assert totals.tolist() == [3, 2] and values.tolist() == [[0.0] * len(qs)] * 2
    monkeypatch.setattr(sketch, "DENSE_CELLS", len(sketches) * 10)
    assert sketch.dense_quantiles(groups, indexes.astype(np.int16), counts, len(sketches), qs) is None
