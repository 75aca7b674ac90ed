"""The playbook's checks, as an engineer runs them by hand: token rate, calls per request, model
mix, errors by model, template versions, tenant and user mix, cache hit rate, tokens per
request; and the agent checks (steps, loops, tool failures per run)."""

from __future__ import annotations

from typing import Any

from tokentrace.query import agents
from tokentrace.query.triage.periods import Period
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store


# --- the checks: the playbook's steps ---------------------------------------------------------
def _share(period: Period, dimension: str) -> dict[str, float]:
    """Each value's share of the period's calls along one dimension."""
    if not period.total.calls:
        return {}
    return {
        key[0][1]: totals.calls / period.total.calls
        for key, totals in period.slices.items()
        if len(key) == 1 and key[0][0] == dimension
    }


def _mix_shift(before: Period, after: Period, dimension: str) -> dict[str, Any]:
    """How far a distribution moved (total variation: 0 same, 1 disjoint) and its biggest mover."""
    b, a = _share(before, dimension), _share(after, dimension)
    moves = {value: a.get(value, 0.0) - b.get(value, 0.0) for value in set(a) | set(b)}
    if not moves:
        return {"step": f"{dimension} mix", "shift": 0.0}
    top = max(moves, key=lambda v: abs(moves[v]))
    return {
        "step": f"{dimension} mix",
        "shift": round(sum(abs(m) for m in moves.values()) / 2, 4),
        "biggest_mover": {
            "value": top,
            "before": round(b.get(top, 0.0), 4),
            "after": round(a.get(top, 0.0), 4),
        },
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _check(step: str, before: float | None, after: float | None) -> dict[str, Any]:
    change = None
    if before and after is not None:
        change = round(after / before - 1, 4)
    return {"step": step, "before": rounded(before), "after": rounded(after), "change": change}


def rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def checks(before: Period, after: Period) -> list[dict[str, Any]]:
    """The playbook's steps, each with its before and after."""
    b, a = before.total, after.total
    out = [
        _check("tokens per hour", before.rate(b.tokens), after.rate(a.tokens)),
        _check("cost per hour", before.rate(b.cost), after.rate(a.cost)),
        _check("requests per hour", before.rate(len(b.traces)), after.rate(len(a.traces))),
        _check("LLM calls per request", ratio(b.calls, len(b.traces)), ratio(a.calls, len(a.traces))),
        _check("error rate", ratio(b.errors, b.calls), ratio(a.errors, a.calls)),
        _check(
            "rate-limit errors per call",
            ratio(b.errors_by_type.get("rate_limit", 0), b.calls),
            ratio(a.errors_by_type.get("rate_limit", 0), a.calls),
        ),
        _check("tokens per request", ratio(b.tokens, len(b.traces)), ratio(a.tokens, len(a.traces))),
        _check("cache hit rate", ratio(b.cache_read, b.input_tokens), ratio(a.cache_read, a.input_tokens)),
        _check("p95 latency ms", b.p95(), a.p95()),
    ]
    for dimension in ("request_model", "prompt_version", "prompt_template", "tenant_id", "user_id"):
        out.append(_mix_shift(before, after, dimension))
    errors = []
    for key, totals in after.slices.items():
        if len(key) == 1 and key[0][0] == "request_model" and totals.errors:
            prior = before.of(key)
            errors.append(
                {
                    "model": key[0][1],
                    "before": rounded(ratio(prior.errors, prior.calls)),
                    "after": rounded(totals.errors / totals.calls),
                    "types": dict(totals.errors_by_type),
                }
            )
    out.append({"step": "errors by model", "models": sorted(errors, key=lambda e: -e["after"])})
    return out


def agent_checks(store: Store, project_id: str, before: Period, after: Period) -> list[dict[str, Any]]:
    """Turns per run of each agent (before → after), and the runs that loop in the window."""
    history = agents.runs_of_calls(before.calls)
    usual, then = agents.usual_turns(history), agents.mean_turns(history)
    current = agents.runs_of_calls(after.calls)
    now = agents.mean_turns(current)
    out = [_check(f"turns per run ({agent})", then.get(agent), now[agent]) for agent in sorted(now)]
    if now:
        found = agents.loops(store, SpanFilter(project_id, after.since, after.until), current, usual)
        out.append(
            {
                "step": "agent loops",
                "runs": [{**loop.__dict__, "text": loop.describe()} for loop in found],
            }
        )
    return out
