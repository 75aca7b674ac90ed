"""Trace lists, trace trees and span detail."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from tokentrace import semconv
from tokentrace.canonical import LLM_OPERATIONS, TAG_FIELDS, TOKEN_FIELDS
from tokentrace.query.conversation import conversation
from tokentrace.query.records import records
from tokentrace.query.scores import trace_scores
from tokentrace.store.filters import TraceFilter
from tokentrace.store.protocol import Store

_ROLLED_UP = (*TOKEN_FIELDS, "cost_usd")

#: A span of a trace tree: the canonical span's stored columns (attributes and resource parsed),
#: its `children` (span nodes) and its `subtree` (a Spend). Kept a dict: it is the stored row.
SpanNode = dict[str, Any]


@dataclass(slots=True)
class TracePage:
    """A page of trace summaries (one stored row each), newest first."""

    traces: list[dict[str, Any]]
    has_more: bool
    limit: int
    offset: int


@dataclass(slots=True)
class Spend:
    """What spans used: tokens by kind and cost of the calls that count (duplicates never do),
    the LLM calls among them, and the tool runs (a tool seen twice in one run is one run)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    tool_runs: int = 0

    def add(self, other: Spend) -> None:
        for f in fields(Spend):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(slots=True, kw_only=True)
class AgentRun(Spend):
    """An agent's run in a trace: its span, nesting depth (a sub-agent is one deeper), latency
    and what its subtree spent; `reported` is what the framework said it used, never summed."""

    span_id: str
    name: str
    depth: int
    duration_ms: float | None
    reported: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class TraceTree:
    """A trace as a tree of span nodes, with its totals, scores, agent runs and its tags (user,
    session, tenant, feature, prompt: each the first a span carries, roots first)."""

    trace_id: str
    span_count: int
    start_time: Any
    end_time: Any
    totals: Spend
    scores: list[dict[str, Any]]
    agents: list[AgentRun]
    tags: dict[str, str]
    roots: list[SpanNode]


def list_traces(store: Store, f: TraceFilter, limit: int = 50, offset: int = 0) -> TracePage:
    """A page of traces, newest first, with `has_more` for pagination."""
    limit = max(1, min(limit, 1000))
    rows = records(store.trace_summaries(f, limit + 1, max(offset, 0)))
    return TracePage(rows[:limit], len(rows) > limit, limit, offset)


def _span_record(row: dict[str, Any]) -> dict[str, Any]:
    row["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else {}
    row["resource"] = orjson.loads(row["resource"]) if row["resource"] else {}
    return row


def trace_tree(store: Store, project_id: str, trace_id: str) -> TraceTree | None:
    """The trace as a tree: each span with its children and its subtree's tokens and cost.

    Spans whose parent never arrived are shown as roots (an incomplete trace is still a
    trace). Duplicates (duplicate_of set) stay in the tree but never add to totals.
    """
    rows = [_span_record(r) for r in records(store.trace_spans(project_id, trace_id.lower()))]
    if not rows:
        return None
    by_id = {r["span_id"]: r for r in rows}
    roots = []
    for row in rows:
        row["children"] = []
    for row in rows:
        parent = by_id.get(row["parent_span_id"])
        (parent["children"] if parent is not None else roots).append(row)

    total = Spend()
    for root in roots:
        total.add(_roll(root))
    return TraceTree(
        trace_id=trace_id.lower(),
        span_count=len(rows),
        start_time=rows[0]["start_time"],
        end_time=max(r["end_time"] for r in rows),
        totals=total,
        scores=trace_scores(store, project_id, trace_id),
        agents=agent_runs(roots),
        tags=_tags(roots),
        roots=roots,
    )


# The recursive walks are module functions, not closures: a closure that calls itself is a
# reference cycle (function, cell) that keeps what it captured until the cycle collector runs.


def _roll(node: SpanNode, parent: SpanNode | None = None) -> Spend:
    """The node's subtree's spend, set on each node of it as `subtree`."""
    totals = Spend()
    if node["duplicate_of"] is None:
        for k in _ROLLED_UP:
            setattr(totals, k, node[k] or 0)
        totals.calls = int(node["operation"] in LLM_OPERATIONS)
    totals.tool_runs = int(node["operation"] == "execute_tool" and not same_tool_run(node, parent))
    for child in node["children"]:
        totals.add(_roll(child, node))
    node["subtree"] = totals
    return totals


def _tags(roots: list[SpanNode]) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in walk(roots):
        for name in TAG_FIELDS:
            if name not in found and node[name] is not None:
                found[name] = node[name]
    return found


def same_tool_run(node: SpanNode, parent: SpanNode | None) -> bool:
    """A tool span directly inside a span of the same tool's run is that run seen by a second
    instrumentation (Traceloop's MCP one records it again inside the Agents SDK's): one run."""
    return (
        parent is not None
        and parent["operation"] == "execute_tool"
        and parent["tool_name"] == node["tool_name"]
    )


def agent_runs(roots: list[SpanNode]) -> list[AgentRun]:
    """Each agent's run in a trace tree (sub-agents under their parent, in tree order) with what
    its subtree spent: calls (turns), tool runs, tokens, cost, and its latency. A sub-agent's
    spend is inside its parent's too, as the calls were made for both. `reported` is what the
    framework itself said the run used (`tokentrace.subtotal.*`), shown beside it, never summed."""
    runs: list[AgentRun] = []
    _add_agent_runs(roots, 0, runs)
    return runs


def _add_agent_runs(nodes: list[SpanNode], depth: int, runs: list[AgentRun]) -> None:
    for node in nodes:
        deeper = depth
        if node["operation"] == "invoke_agent":
            attributes = node["attributes"]
            spent: Spend = node["subtree"]
            runs.append(
                AgentRun(
                    **{f.name: getattr(spent, f.name) for f in fields(Spend)},
                    span_id=node["span_id"],
                    name=node["agent_name"] or node["name"],
                    depth=depth,
                    duration_ms=node["duration_ms"],
                    reported={
                        field: attributes[semconv.SUBTOTAL + field]
                        for field in TOKEN_FIELDS
                        if semconv.SUBTOTAL + field in attributes
                    },
                )
            )
            deeper = depth + 1
        _add_agent_runs(node["children"], deeper, runs)


def walk(nodes: list[SpanNode]) -> Iterator[SpanNode]:
    """Every span of a trace tree's `roots` (or of any node list), depth first."""
    for node in nodes:
        yield node
        yield from walk(node["children"])


def tree_span(store: Store, project_id: str, tree: TraceTree, span_id: str) -> dict[str, Any] | None:
    """A span of an already read trace tree with its content and scores, as span_detail gives
    it (plus `children` and `subtree`), without reading the trace's spans again."""
    span_id = span_id.lower()
    node = next((n for n in walk(tree.roots) if n["span_id"] == span_id), None)
    if node is None:
        return None
    return {
        **node,
        "content": conversation(store.content(project_id, tree.trace_id, span_id)),
        "scores": [s for s in tree.scores if s["span_id"] == span_id],
    }


def span_detail(store: Store, project_id: str, trace_id: str, span_id: str) -> dict[str, Any] | None:
    """One span's canonical fields with its message content (None when absent)."""
    trace_id, span_id = trace_id.lower(), span_id.lower()
    for row in records(store.trace_spans(project_id, trace_id)):
        if row["span_id"] == span_id:
            span = _span_record(row)
            span["content"] = conversation(store.content(project_id, trace_id, span_id))
            span["scores"] = [s for s in trace_scores(store, project_id, trace_id) if s["span_id"] == span_id]
            return span
    return None
