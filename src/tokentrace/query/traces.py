"""Trace lists, trace trees and span detail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from tokentrace import semconv
from tokentrace.canonical import LLM_OPERATIONS, TOKEN_FIELDS
from tokentrace.query.conversation import conversation
from tokentrace.query.records import records
from tokentrace.query.scores import trace_scores
from tokentrace.store.filters import TraceFilter
from tokentrace.store.protocol import Store

_ROLLED_UP = (*TOKEN_FIELDS, "cost_usd")


def list_traces(store: Store, f: TraceFilter, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """A page of traces, newest first, with `has_more` for pagination."""
    limit = max(1, min(limit, 1000))
    rows = records(store.trace_summaries(f, limit + 1, max(offset, 0)))
    return {"traces": rows[:limit], "has_more": len(rows) > limit, "limit": limit, "offset": offset}


def _span_record(row: dict[str, Any]) -> dict[str, Any]:
    row["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else {}
    row["resource"] = orjson.loads(row["resource"]) if row["resource"] else {}
    return row


def trace_tree(store: Store, project_id: str, trace_id: str) -> dict[str, Any] | None:
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

    def roll(node: dict[str, Any], parent: dict[str, Any] | None = None) -> dict[str, float]:
        own = node["duplicate_of"] is None
        totals = {k: (node[k] or 0) if own else 0 for k in _ROLLED_UP}
        totals["calls"] = int(own and node["operation"] in LLM_OPERATIONS)
        totals["tool_runs"] = int(node["operation"] == "execute_tool" and not same_tool_run(node, parent))
        for child in node["children"]:
            for k, v in roll(child, node).items():
                totals[k] += v
        node["subtree"] = totals
        return totals

    total = {k: 0 for k in (*_ROLLED_UP, "calls", "tool_runs")}
    for root in roots:
        for k, v in roll(root).items():
            total[k] += v
    return {
        "trace_id": trace_id.lower(),
        "span_count": len(rows),
        "start_time": rows[0]["start_time"],
        "end_time": max(r["end_time"] for r in rows),
        "totals": total,
        "scores": trace_scores(store, project_id, trace_id),
        "agents": agent_runs(roots),
        "roots": roots,
    }


def same_tool_run(node: dict[str, Any], parent: dict[str, Any] | None) -> bool:
    """A tool span directly inside a span of the same tool's run is that run seen by a second
    instrumentation (Traceloop's MCP one records it again inside the Agents SDK's): one run."""
    return (
        parent is not None
        and parent["operation"] == "execute_tool"
        and parent["tool_name"] == node["tool_name"]
    )


def agent_runs(roots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each agent's run in a trace tree (sub-agents under their parent, in tree order) with what
    its subtree spent: calls (turns), tool runs, tokens, cost, and its latency. A sub-agent's
    spend is inside its parent's too, as the calls were made for both. `reported` is what the
    framework itself said the run used (`tokentrace.subtotal.*`), shown beside it, never summed."""
    runs = []

    def visit(nodes: list[dict[str, Any]], depth: int) -> None:
        for node in nodes:
            deeper = depth
            if node["operation"] == "invoke_agent":
                reported = {
                    field: node["attributes"][semconv.SUBTOTAL + field]
                    for field in TOKEN_FIELDS
                    if semconv.SUBTOTAL + field in node["attributes"]
                }
                runs.append(
                    {
                        "span_id": node["span_id"],
                        "name": node["agent_name"] or node["name"],
                        "depth": depth,
                        "duration_ms": node["duration_ms"],
                        **node["subtree"],
                        "reported": reported,
                    }
                )
                deeper = depth + 1
            visit(node["children"], deeper)

    visit(roots, 0)
    return runs


def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every span of a trace tree's `roots` (or of any node list), depth first."""
    for node in nodes:
        yield node
        yield from walk(node["children"])


def tree_span(store: Store, project_id: str, tree: dict[str, Any], span_id: str) -> dict[str, Any] | None:
    """A span of an already read trace tree with its content and scores, as span_detail gives
    it (plus `children` and `subtree`), without reading the trace's spans again."""
    span_id = span_id.lower()
    node = next((n for n in walk(tree["roots"]) if n["span_id"] == span_id), None)
    if node is None:
        return None
    return {
        **node,
        "content": conversation(store.content(project_id, tree["trace_id"], span_id)),
        "scores": [s for s in tree["scores"] if s["span_id"] == span_id],
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
