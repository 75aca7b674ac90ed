"""What every store must do alike (each test runs on DuckDB and on ClickHouse through chDB):
projects and keys, settings set through the API, content and scores read back, the spool
position, repricing, histograms and export, compaction."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from tests.builders.random_calls import random_call
from tokentrace.canonical import COST_UPDATE_SCHEMA
from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.pricing import PriceBook
from tokentrace.query import rollups
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter

START = datetime(2026, 11, 20, tzinfo=UTC)
PROMPT = '[{"role": "user", "parts": [{"type": "text", "content": "where is my refund?"}]}]'


def _filled(open_store):
    store = open_store()
    rng = random.Random(4)
    raws = [random_call(rng, n, START + timedelta(seconds=rng.uniform(0, 7200))) for n in range(1, 301)]
    raws[0].attributes["gen_ai.input.messages"] = PROMPT
    batch = normalize(raws, "default")
    price_rows(PriceBook(), batch.rows)
    score = {
        "project_id": "default", "score_id": "s1", "trace_id": raws[0].trace_id, "span_id": "",
        "name": "helpful", "data_type": "numeric", "value": 0.0, "string_value": None, "comment": "no",
        "source": "api", "created_at": START,
    }  # fmt: skip
    assert store.write_batch(tables(batch.rows, batch.content, [score]), (3, 1200)) == 300
    return store, raws


def test_projects_keys_and_settings(open_store):
    store = open_store()
    assert [p.project_id for p in store.projects()] == ["default"]
    store.create_project("acme", "hash-1")
    store.add_key("acme", "hash-2")
    assert [p.project_id for p in store.projects()] == ["acme", "default"]
    assert (store.project_for_key("hash-2"), store.project_for_key("nope")) == ("acme", None)
    store.put_alert_rule("acme", "spend", '{"kind": "threshold"}')
    store.put_alert_rule("acme", "errors", "{}")
    assert store.delete_alert_rule("acme", "errors") and not store.delete_alert_rule("acme", "errors")
    assert store.alert_rules("acme") == [("acme", "spend", '{"kind": "threshold"}')]
    store.put_sampling_policy("acme", '{"base_rate": 0.1}')
    assert store.sampling_policies() == {"acme": '{"base_rate": 0.1}'}
    store.put_sampling_policy("acme", None)
    assert store.sampling_policies() == {}
    assert store.retained_because("acme", "0" * 32) is None


def test_content_scores_and_spool_position(open_store):
    store, raws = _filled(open_store)
    first = raws[0]
    content = store.content("default", first.trace_id, first.span_id)
    assert content["input_messages"][0]["parts"][0]["content"] == "where is my refund?"
    assert store.content("default", first.trace_id, "f" * 16) is None
    scores = records(store.scores("default", first.trace_id))
    assert [(s["name"], s["value"], s["comment"]) for s in scores] == [("helpful", 0.0, "no")]
    assert store.spool_position() == (3, 1200)


def test_repricing_reaches_spans_and_rollups(open_store):
    store, raws = _filled(open_store)
    store.advance_rollups(START + timedelta(hours=3))
    f = SpanFilter("default", since=START, until=START + timedelta(hours=2))
    target = raws[5]
    changed = store.update_costs(
        "default",
        pa.table({
            "trace_id": [target.trace_id], "span_id": [target.span_id], "cost_usd": [42.0],
            "cost_known": [True], "deployment": [None], "attributes": ["{}"],
        }, schema=COST_UPDATE_SCHEMA),
    )  # fmt: skip
    assert changed == 1
    span = next(r for r in store.trace_spans("default", target.trace_id).to_pylist())
    assert span["cost_usd"] == 42.0
    spans_cost = records(store.aggregate(f, (), None, distinct=False))[0]["cost_usd"]
    rolled_cost = rollups.aggregate(store, f, (), None)[0]["cost_usd"]
    assert rolled_cost == pytest.approx(spans_cost) and spans_cost > 42.0


def test_histogram_and_export(open_store):
    store, _ = _filled(open_store)
    f = SpanFilter("default")
    hist = records(store.histogram(f, ("request_model",), "duration_ms", (500.0, 1000.0, 1e9)))
    assert sum(r["count"] for r in hist) == sum(r["le_2"] for r in hist) == 300
    assert all(r["le_0"] <= r["le_1"] <= r["le_2"] for r in hist)
    exported = pa.Table.from_batches(list(store.export(f, batch_rows=128)))
    assert exported.num_rows == 300
    assert exported["start_time"].to_pylist() == sorted(exported["start_time"].to_pylist())


def test_alert_state_and_notifications(open_store):
    store = open_store()
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    state = {
        "rule": "spend", "group_key": '{"feature": "chat"}', "status": "firing", "value": 2.5,
        "active_since": at, "fired_at": at, "resolved_at": None, "evaluated_at": at,
    }  # fmt: skip
    event = {"event_id": "e1", "rule": "spend", "group_key": state["group_key"], "status": "firing", "at": at}
    store.save_alert_evaluation("default", [state], [], [{**event, "payload": {"value": 2.5}}])
    store.save_alert_evaluation("default", [{**state, "rule": "errors"}], [], [])
    assert store.alert_states("default") == [{**state, "rule": "errors"}, state]
    assert store.alert_states("other") == []
    store.save_alert_evaluation("default", [], [("errors", state["group_key"])], [])
    assert [s["rule"] for s in store.alert_states("default")] == ["spend"]

    [owed] = store.alert_events(undelivered=True)
    assert (owed["event_id"], owed["payload"], owed["attempts"], owed["at"]) == ("e1", {"value": 2.5}, 0, at)
    store.mark_alert_event("e1", delivered=False, error="connection refused")
    [again] = store.alert_events("default", undelivered=True)
    assert (again["attempts"], again["last_error"]) == (1, "connection refused")
    store.mark_alert_event("e1", delivered=True)
    assert store.alert_events(undelivered=True) == []
    [sent] = store.alert_events("default")
    assert sent["attempts"] == 2 and sent["delivered_at"] is not None


def test_score_summaries_by_tag(open_store):
    store, raws = _filled(open_store)
    label = {
        "project_id": "default", "score_id": "s2", "trace_id": raws[1].trace_id, "span_id": raws[1].span_id,
        "name": "verdict", "data_type": "categorical", "value": None, "string_value": "good", "comment": None,
        "source": "eval", "created_at": START,
    }  # fmt: skip
    store.write_batch(tables(scores=[label]), None)
    rows = records(store.score_summary(SpanFilter("default"), ("tenant_id",), None))
    by_name = {r["name"]: r for r in rows}
    assert by_name["helpful"]["scores"] == 1 and by_name["helpful"]["mean"] == 0.0
    scored_span = store.trace_spans("default", raws[0].trace_id).to_pylist()[0]
    assert by_name["helpful"]["tenant_id"] == scored_span["tenant_id"] is not None
    assert by_name["verdict"]["scores"] == 1 and dict(by_name["verdict"]["labels"]) == {"good": 1}
    only = records(store.score_summary(SpanFilter("default"), (), "verdict"))
    assert [r["name"] for r in only] == ["verdict"]


def test_scores_by_time_bucket_and_the_lowest_with_their_span(open_store):
    store, raws = _filled(open_store)
    graded = [r for r in raws[1:7]]
    scores = [
        {
            "project_id": "default", "score_id": f"g{n}", "trace_id": r.trace_id, "span_id": r.span_id,
            "name": "groundedness", "data_type": "numeric", "value": n / 10, "string_value": None,
            "comment": f"verdict {n}", "source": "evaluator", "created_at": START,
        }
        for n, r in enumerate(graded)
    ]  # fmt: skip
    store.write_batch(tables(scores=scores), None)
    f = SpanFilter("default", since=START, until=START + timedelta(hours=2))
    hourly = records(store.score_summary(f, (), "groundedness", bucket_seconds=3600))
    starts = sorted(r.start_unix_nano for r in graded)
    want: dict[str, int] = {}
    for ns in starts:  # the scored spans' hours
        hour = datetime.fromtimestamp(ns / 1e9, UTC).replace(minute=0, second=0, microsecond=0)
        key = hour.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")  # as records() writes a time
        want[key] = want.get(key, 0) + 1
    assert {r["bucket"]: r["scores"] for r in hourly} == want
    lowest = records(store.lowest_scores(f, "groundedness", 3))
    assert [(r["value"], r["comment"], r["source"]) for r in lowest] == [
        (0.0, "verdict 0", "evaluator"), (0.1, "verdict 1", "evaluator"), (0.2, "verdict 2", "evaluator")
    ]  # fmt: skip
    span = store.trace_spans("default", graded[0].trace_id).to_pylist()[0]
    assert (lowest[0]["trace_id"], lowest[0]["span_id"]) == (graded[0].trace_id, graded[0].span_id)
    assert (lowest[0]["request_model"], lowest[0]["feature"]) == (span["request_model"], span["feature"])
    assert records(store.lowest_scores(f, "helpful", 5))[0]["value"] == 0.0  # a trace-level score too
    assert records(store.lowest_scores(f, "nothing", 5)) == []
    means = {
        (r["trace_id"], r["name"]): r["mean"]
        for r in records(store.score_means_by_trace(f, ("groundedness", "helpful")))
    }
    want = {(r.trace_id, "groundedness"): n / 10 for n, r in enumerate(graded)} | {
        (raws[0].trace_id, "helpful"): 0.0
    }
    assert means == pytest.approx(want)


def test_content_sent_in_parts_is_merged(open_store):
    store = open_store()
    trace, span = "9c8efff798038103d269b633813fc60c", "00000000000000a1"

    def part(**values):
        row = {"project_id": "default", "trace_id": trace, "span_id": span, "start_time": START}
        row |= {"system_instructions": None, "input_messages": None, "output_messages": None, "events": None}
        return tables(content=[row | values])

    hello = '[{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]'
    event = '[{"name": "retry", "time_unix_nano": 1}]'
    store.write_batch(part(input_messages=hello, events=event), None)
    store.write_batch(part(input_messages='[{"role": "user", "parts": []}]'), None)  # not the first
    store.write_batch(part(events=event), None)  # an exporter's retry: not added twice
    store.write_batch(part(events='[{"name": "done", "time_unix_nano": 2}]'), None)
    content = store.content("default", trace, span)
    assert content["input_messages"][0]["parts"][0]["content"] == "hello"
    assert [e["name"] for e in content["events"]] == ["retry", "done"]
    assert content["system_instructions"] is None


def test_content_parts_merge_in_one_batch_and_beside_new_spans(open_store):
    """A batch may hold a span's parts twice (a record before its span was written) and parts of
    stored spans beside new ones: each is merged, and a new span's content is stored as sent."""
    store = open_store()
    trace = "9c8efff798038103d269b633813fc60c"

    def part(span, **values):
        row = {"project_id": "default", "trace_id": trace, "span_id": span, "start_time": START}
        return (
            row
            | {"system_instructions": None, "input_messages": None, "output_messages": None, "events": None}
            | values
        )

    hello = '[{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]'
    answer = '[{"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}]'
    retry, done = '[{"name": "retry", "time_unix_nano": 1}]', '[{"name": "done", "time_unix_nano": 2}]'
    store.write_batch(tables(content=[part("00000000000000a1", input_messages=hello, events=retry)]), None)
    store.write_batch(
        tables(
            content=[
                part("00000000000000a1", output_messages=answer, events=done),  # stored: merged
                part("00000000000000a2", input_messages=hello, events=retry),  # new: as sent
            ]
        ),
        None,
    )
    store.write_batch(
        tables(
            content=[  # the same new span twice in one batch, and an old part resent
                part("00000000000000a3", events=retry),
                part("00000000000000a3", output_messages=answer, events=done),
                part("00000000000000a2", events=retry),
            ]
        ),
        None,
    )
    first = store.content("default", trace, "00000000000000a1")
    assert first["input_messages"][0]["parts"][0]["content"] == "hello"
    assert first["output_messages"][0]["parts"][0]["content"] == "hi"
    assert [e["name"] for e in first["events"]] == ["retry", "done"]
    second = store.content("default", trace, "00000000000000a2")
    assert second["input_messages"][0]["parts"][0]["content"] == "hello"
    assert [e["name"] for e in second["events"]] == ["retry"]
    third = store.content("default", trace, "00000000000000a3")
    assert third["output_messages"][0]["parts"][0]["content"] == "hi"
    assert sorted(e["name"] for e in third["events"]) == ["done", "retry"]


def test_compacting_changes_no_read(open_store):
    """The hourly compaction (DuckDB: a checkpoint that vacuums; ClickHouse: the rollups'
    superseded versions deleted) leaves every total and percentile as it was."""
    store, raws = _filled(open_store)
    store.advance_rollups(START + timedelta(hours=3))
    target = raws[5]
    store.update_costs(
        "default",
        pa.table(
            {
                "trace_id": [target.trace_id],
                "span_id": [target.span_id],
                "cost_usd": [42.0],
                "cost_known": [True],
                "deployment": [None],
                "attributes": ["{}"],
            },
            schema=COST_UPDATE_SCHEMA,
        ),
    )  # a bucket rolled up again: on ClickHouse, a newer version of its rows
    f = SpanFilter("default", since=START - timedelta(hours=4), until=START + timedelta(hours=3))

    def rounded(rows):  # (sums of floats come in another order once parts merge)
        return sorted(
            str({k: round(v, 9) if isinstance(v, float) else v for k, v in r.items()}) for r in rows
        )

    def reads():
        by_model = rollups.aggregate(store, f, ("request_model",), 600)
        latency = rollups.quantiles(store, f, ("request_model",), ("duration_ms",), (0.5, 0.99), None)
        return rounded(by_model), rounded(latency)

    before = reads()
    rows = "SELECT count() AS n FROM rollup_minute"
    counted = store._ch.query(rows)["n"][0].as_py() if hasattr(store, "_ch") else None
    store.compact()
    assert reads() == before and before[0] and before[1]
    if counted is not None:  # the superseded version of the repriced bucket is gone
        assert store._ch.query(rows)["n"][0].as_py() < counted


def test_week_and_two_day_buckets_are_the_same_in_both_stores(open_store):
    """DuckDB counts buckets from 2000-01-03 (a Monday); ClickHouse's toStartOfInterval counts
    from the epoch (a Thursday). A week's bucket starts on Monday in both, from spans and from
    rollups alike, and so does any width that does not divide a day."""
    store = open_store()
    rng = random.Random(7)
    raws = [random_call(rng, n, START + timedelta(hours=rng.uniform(0, 24 * 12))) for n in range(1, 121)]
    batch = normalize(raws, "default")
    price_rows(PriceBook(), batch.rows)
    store.write_batch(tables(batch.rows), None)
    f = SpanFilter("default", since=START - timedelta(days=14), until=START + timedelta(days=14))
    origin = datetime(2000, 1, 3, tzinfo=UTC)
    for width in (7 * 86400, 2 * 86400):
        want: dict[str, int] = {}
        for raw in raws:
            at = datetime.fromtimestamp(raw.start_unix_nano / 1e9, UTC)
            start = origin + timedelta(seconds=(at - origin).total_seconds() // width * width)
            key = start.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
            want[key] = want.get(key, 0) + 1
        from_spans = records(store.aggregate(f, (), width, distinct=False))
        assert {r["bucket"]: r["requests"] for r in from_spans} == want, width
    store.advance_rollups(START + timedelta(days=13))
    weekly = rollups.aggregate(store, f, (), 7 * 86400)
    starts = [r["bucket"] for r in weekly]
    assert len(starts) == 3 and {datetime.fromisoformat(s).weekday() for s in starts} == {0}  # Mondays
    assert sum(r["requests"] for r in weekly) == len(raws)


def test_a_traces_spans_are_found_across_hours_batches_and_retention(open_store):
    """One trace's spans in three batches and three hours (one arriving a day late), among
    other traces: all of them are found, oldest first; retention leaves the later ones found;
    an unknown trace and another project's find nothing."""
    store = open_store()
    rng = random.Random(9)
    trace = "ab" * 16
    at = [START + timedelta(minutes=10), START + timedelta(hours=2, minutes=5), START + timedelta(days=1)]
    for n, when in enumerate(at):
        others = [random_call(rng, 100 * n + k, when + timedelta(seconds=k)) for k in range(1, 40)]
        ours = random_call(rng, 100 * n, when)
        ours.trace_id, ours.span_id = trace, f"{n + 1:016x}"
        batch = normalize([*others, ours], "default")
        store.write_batch(tables(batch.rows), None)
    found = store.trace_spans("default", trace).to_pylist()
    assert [s["span_id"] for s in found] == ["0000000000000001", "0000000000000002", "0000000000000003"]
    assert store.trace_spans("default", "cd" * 16).num_rows == 0
    assert store.trace_spans("other", trace).num_rows == 0
    store.delete_before(START + timedelta(hours=1))
    assert [s["span_id"] for s in store.trace_spans("default", trace).to_pylist()] == [
        "0000000000000002",
        "0000000000000003",
    ]
