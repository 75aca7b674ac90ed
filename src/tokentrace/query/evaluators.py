"""The evaluators' state, for the API and the evaluators page: each evaluator with how many of
the project's calls (or sessions) it has graded, has due, skipped or failed, its latest failures,
and what its judge's calls cost (today: what its daily budget counts; and the
last 24 hours of this project's, from the judge's own spans)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tokentrace.evals.config import Evaluator
from tokentrace.evals.judge_trace import JUDGE_PROJECT, judge_trace_id
from tokentrace.query.aggregates import rollup
from tokentrace.query.traces import TraceTree, trace_tree
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store


def evaluator_status(
    store: Store, project_id: str, evaluators: tuple[Evaluator, ...], now: datetime
) -> list[dict[str, Any]]:
    """One row per configured evaluator (none: an empty list)."""
    if not evaluators:
        return []
    counts = store.evaluation_states(project_id)
    trouble = store.evaluation_list(project_id, "failed", 20)
    spent = store.evaluation_spend(now.replace(hour=0, minute=0, second=0, microsecond=0))
    judged = SpanFilter(
        JUDGE_PROJECT, since=now - timedelta(hours=24), until=now, equals={"tenant_id": project_id}
    )
    calls = {row["feature"]: row for row in rollup(store, judged, ("feature",), None, distinct=False)}
    return [
        {
            "name": e.name,
            "source": "api" if e.project_id is not None else "file",
            "kind": e.kind,
            "scope": e.scope,
            "quiet_minutes": e.quiet_minutes if e.scope == "session" else None,
            "version": e.version,
            "operation": e.operation,
            "where": dict(e.where),
            "sample_rate": e.sample_rate,
            "rate_limit_per_minute": e.rate_limit_per_minute,
            "daily_budget_usd": e.daily_budget_usd,
            "judge_model": e.judge.model if e.judge is not None else None,
            # the judge's calls today that its daily budget counts (a file evaluator's: every
            # project's)
            "judge_spend_today_usd": e.spent(spent) if e.judge is not None else None,
            # this project's, the last 24 hours, from the judge's spans (project JUDGE_PROJECT)
            "judge_calls_24h": _calls(calls.get(e.name)) if e.judge is not None else None,
            "evaluations": counts.get(e.name, {}),
            "latest_failures": [
                {
                    "trace_id": f["trace_id"],
                    "span_id": f["span_id"],
                    "error": f["error"],
                    "at": f["updated_at"].isoformat(),
                }
                for f in trouble
                if f["evaluator"] == e.name
            ][:5],
        }
        for e in evaluators
    ]


def _calls(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    return {k: row[k] for k in ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")}


def judge_traces(store: Store, project_id: str, scores: list[dict[str, Any]]) -> dict[str, str]:
    """score_id → the trace of its judge's calls, for the evaluators' scores that have one (an
    llm_judge's; a rule's has none)."""
    wanted = {
        judge_trace_id(project_id, s["score_id"]): s["score_id"] for s in scores if s["source"] == "evaluator"
    }
    if not wanted:
        return {}
    f = SpanFilter(JUDGE_PROJECT, equals={"trace_id": tuple(wanted), "tenant_id": project_id})
    found = store.spans(f, ("trace_id",)).column("trace_id").to_pylist()
    return {wanted[t]: t for t in set(found)}


def judge_trace(store: Store, project_id: str, trace_id: str) -> TraceTree | None:
    """A trace of the judge's calls, when they judged this project's calls (None otherwise: the
    judges' project is read only through what it judged)."""
    tree = trace_tree(store, JUDGE_PROJECT, trace_id)
    return tree if tree is not None and tree.tags.get("tenant_id") == project_id else None
