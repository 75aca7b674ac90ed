"""Trace trees and rollups over each real store (DuckDB, and ClickHouse through chDB)."""

from __future__ import annotations

import time

import pytest

from tokentrace.ingest.columns import tables
from tokentrace.ingest.normalize import normalize
from tokentrace.ingest.prepare import price_rows
from tokentrace.ingest.raw import RawSpan
from tokentrace.pricing import PriceBook
from tokentrace.query import aggregates, filters
from tokentrace.query.sessions import list_sessions
from tokentrace.query.traces import trace_tree
from tokentrace.store.filters import SpanFilter

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _write(store, spans: list[RawSpan]) -> None:
    batch = normalize(spans, "default")
    price_rows(PriceBook(), batch.rows)
    store.write_batch(tables(batch.rows), None)


def _span(span_id: str, parent: str = "", tokens: int | None = None, offset_ms: int = 0, **attrs) -> RawSpan:
    start = time.time_ns() + offset_ms * 1_000_000
    if tokens is not None:
        attrs |= {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai",
            "gen_ai.usage.input_tokens": tokens,
            "gen_ai.usage.output_tokens": 1,
        }
    return RawSpan(
        TRACE,
        span_id,
        parent,
        f"span {span_id[-1]}",
        1,
        start,
        start + 5_000_000,
        0,
        "",
        attrs,
        {"service.name": "svc"},
    )


@pytest.fixture
def store(open_store):
    return open_store()


def test_children_arriving_before_their_root_still_form_one_tree(store):
    _write(store, [_span("00000000000000b2", parent="00000000000000a1", tokens=100, offset_ms=1)])
    _write(store, [_span("00000000000000c3", parent="00000000000000b2", tokens=50, offset_ms=2)])
    assert [r["span_id"] for r in trace_tree(store, "default", TRACE).roots] == ["00000000000000b2"]
    _write(store, [_span("00000000000000a1")])  # the root arrives last

    tree = trace_tree(store, "default", TRACE.upper())
    [root] = tree.roots
    assert root["span_id"] == "00000000000000a1"
    [child] = root["children"]
    assert child["children"][0]["span_id"] == "00000000000000c3"
    assert root["subtree"].input_tokens == 150 and tree.totals.input_tokens == 150
    assert root["subtree"].cost_usd == pytest.approx(child["cost_usd"] + child["children"][0]["cost_usd"])


def test_spans_whose_parent_never_arrives_are_shown_as_roots(store):
    _write(store, [_span("00000000000000a1"), _span("00000000000000d4", parent="00000000000000ff")])
    assert len(trace_tree(store, "default", TRACE).roots) == 2
    assert trace_tree(store, "default", "f" * 32) is None


def test_rollup_groups_and_rates(store):
    _write(
        store,
        [
            _span("00000000000000a1", tokens=100, **{"tenant.id": "a"}),
            _span("00000000000000b2", tokens=300, **{"tenant.id": "b"}),
            _span("00000000000000c3", tokens=100, **{"tenant.id": "b"}),
        ],
    )
    rows = aggregates.rollup(store, SpanFilter("default"), filters.group_fields("tenant"))
    by_tenant = {r["tenant_id"]: r for r in rows}
    assert by_tenant["b"]["requests"] == 2 and by_tenant["b"]["input_tokens"] == 400
    assert rows[0]["tenant_id"] == "b"  # most expensive first
    assert by_tenant["a"]["cost_per_request"] == pytest.approx(by_tenant["a"]["cost_usd"])
    [bucketed] = aggregates.rollup(store, SpanFilter("default"), (), bucket_seconds=3600)
    assert bucketed["requests"] == 3 and bucketed["bucket"].endswith("Z")
    [lat] = aggregates.latency(store, SpanFilter("default"), ("request_model",))
    assert lat["requests"] == 3 and lat["duration_ms"]["p50"] == pytest.approx(5.0)


def test_unknown_group_field_is_a_clear_error():
    with pytest.raises(filters.FilterError, match="not a field you can filter or group by"):
        filters.group_fields("tenant,attributes")


def test_an_agent_with_a_sub_agent_sums_each_run_exactly(open_store):
    """A planner's run holds its own call and a researcher sub-agent's two calls and tool run: each
    agent's line sums its subtree's calls once; what the framework reported (the researcher's
    totals on its own span) is shown beside it and added to nothing."""
    store = open_store()
    _write(
        store,
        [
            _span(
                "00000000000000a1",
                **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
            ),
            _span("00000000000000a2", "00000000000000a1", tokens=100, offset_ms=1),
            _span(
                "00000000000000b1",
                "00000000000000a1",
                offset_ms=2,
                **{
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "researcher",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 500,  # the framework's total of its two calls
                    "gen_ai.usage.output_tokens": 2,
                },
            ),
            _span("00000000000000b2", "00000000000000b1", tokens=200, offset_ms=3),
            _span("00000000000000b3", "00000000000000b1", offset_ms=4, **{"gen_ai.tool.name": "search"}),
            _span("00000000000000b4", "00000000000000b1", tokens=300, offset_ms=5),
        ],
    )
    tree = trace_tree(store, "default", TRACE)
    runs = {a.name: a for a in tree.agents}
    assert [(a.name, a.depth) for a in tree.agents] == [("planner", 0), ("researcher", 1)]
    assert (runs["planner"].calls, runs["planner"].input_tokens) == (3, 600)
    assert (
        runs["researcher"].calls,
        runs["researcher"].tool_runs,
        runs["researcher"].input_tokens,
    ) == (
        2,
        1,
        500,
    )
    assert runs["researcher"].reported == {"input_tokens": 500, "output_tokens": 2}

    assert tree.totals.input_tokens == 600 and tree.totals.calls == 3
    assert runs["planner"].cost_usd == pytest.approx(tree.totals.cost_usd)
    assert runs["researcher"].cost_usd == pytest.approx(
        sum(s["cost_usd"] for s in tree.roots[0]["children"][1]["children"] if s["cost_usd"])
    )
    # the calls are each agent's own in cost by agent: the nearest agent ancestor
    calls = {s["span_id"]: s["agent_name"] for s in _all(tree.roots) if s["input_tokens"]}
    assert calls == {
        "00000000000000a2": "planner",
        "00000000000000b2": "researcher",
        "00000000000000b4": "researcher",
    }


def _all(nodes):
    for node in nodes:
        yield node
        yield from _all(node["children"])


def test_a_tool_span_inside_a_span_of_the_same_tool_is_one_run(open_store):
    # a second instrumentation (Traceloop's MCP one) records the run again, nested
    store = open_store()
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
    _write(
        store,
        [
            _span(
                "00000000000000a1",
                **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
            ),
            _span("00000000000000a2", "00000000000000a1", offset_ms=1, **tool),
            _span("00000000000000a3", "00000000000000a2", offset_ms=1, **tool),
            _span("00000000000000a4", "00000000000000a1", offset_ms=2, **tool),  # a second run
        ],
    )
    tree = trace_tree(store, "default", TRACE)
    assert tree.totals.tool_runs == 2 and tree.agents[0].tool_runs == 2


def test_sessions_are_listed_by_their_last_activity_the_end_of_their_last_span(store):
    """A session whose last span started earlier but is still running later is the more recent."""
    now = time.time_ns()

    def span(session: str, start_s: float, end_s: float) -> RawSpan:
        start, end = now + int(start_s * 1e9), now + int(end_s * 1e9)
        trace = f"{abs(hash(session)):032x}"[:32]
        return RawSpan(
            trace, "00000000000000a1", "", "step", 1, start, end, 0, "", {"session.id": session}, {}
        )

    _write(store, [span("long", 0, 60), span("short", 10, 11)])
    page = list_sessions(store, SpanFilter("default"))
    assert [s["session_id"] for s in page.sessions] == ["long", "short"]
