"""The playbook's checks, as an engineer runs them by hand: token rate, calls per request, model
mix, errors by model, template versions, tenant and user mix, cache hit rate, tokens per
request; and the agent checks (steps, loops, tool failures per run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tokentrace.query import agents
from tokentrace.query.triage.periods import Period
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store


@dataclass(slots=True)
class Check:
    """A playbook step's number before and after; `change` is after/before - 1 (None without a before)."""

    step: str
    before: float | None
    after: float | None
    change: float | None


@dataclass(slots=True)
class Mover:
    """A value's share of the calls before and after."""

    value: str
    before: float
    after: float


@dataclass(slots=True)
class MixShift:
    """How far a dimension's mix of calls moved (total variation: 0 same, 1 disjoint), and the
    value that moved most (None when neither period has calls)."""

    step: str
    shift: float
    biggest_mover: Mover | None = None


@dataclass(slots=True)
class ModelErrors:
    """A model's error rate before and after, and its errors by type in the window."""

    model: str
    before: float | None
    after: float
    types: dict[str, int]


@dataclass(slots=True)
class ErrorsByModel:
    """The models with errors in the window, the worst first."""

    step: str
    models: list[ModelErrors]


@dataclass(slots=True)
class AgentLoops:
    """The agent runs that loop in the window: each Loop's fields and its `text`."""

    step: str
    runs: list[dict[str, Any]]


#: One step of the playbook, in the order `checks` gives them.
Step = Check | MixShift | ErrorsByModel | AgentLoops


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


def _mix_shift(before: Period, after: Period, dimension: str) -> MixShift:
    """How far a distribution moved (total variation: 0 same, 1 disjoint) and its biggest mover."""
    b, a = _share(before, dimension), _share(after, dimension)
    moves = {value: a.get(value, 0.0) - b.get(value, 0.0) for value in set(a) | set(b)}
    if not moves:
        return MixShift(f"{dimension} mix", 0.0)
    # Two values can move by the same share (one tenant's gain, the other's loss): the first by
    # name, so the answer does not hang on the order the calls were read in.
    top = min(moves, key=lambda v: (-round(abs(moves[v]), 9), v))
    shift = round(sum(abs(m) for m in moves.values()) / 2, 4)
    return MixShift(
        f"{dimension} mix", shift, Mover(top, round(b.get(top, 0.0), 4), round(a.get(top, 0.0), 4))
    )


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _check(step: str, before: float | None, after: float | None) -> Check:
    change = None
    if before and after is not None:
        change = round(after / before - 1, 4)
    return Check(step, rounded(before), rounded(after), change)


def rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def checks(before: Period, after: Period) -> list[Step]:
    """The playbook's steps, each with its before and after."""
    b, a = before.total, after.total
    out: list[Step] = [
        _check("tokens per hour", before.rate(b.tokens), after.rate(a.tokens)),
        _check("cost per hour", before.rate(b.cost), after.rate(a.cost)),
        _check("requests per hour", before.rate(b.requests), after.rate(a.requests)),
        _check("LLM calls per request", ratio(b.calls, b.requests), ratio(a.calls, a.requests)),
        _check("error rate", ratio(b.errors, b.calls), ratio(a.errors, a.calls)),
        _check(
            "rate-limit errors per call",
            ratio(b.errors_by_type.get("rate_limit", 0), b.calls),
            ratio(a.errors_by_type.get("rate_limit", 0), a.calls),
        ),
        _check("tokens per request", ratio(b.tokens, b.requests), ratio(a.tokens, a.requests)),
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
                ModelErrors(
                    key[0][1],
                    rounded(ratio(prior.errors, prior.calls)),
                    round(totals.errors / totals.calls, 6),
                    dict(totals.errors_by_type),
                )
            )
    out.append(ErrorsByModel("errors by model", sorted(errors, key=lambda e: -e.after)))
    return out


def _runs(period: Period) -> list[agents.Run]:
    """The agent runs among the period's calls: each agent's turns (agents.TURN_OPERATIONS) per trace."""
    calls = period.calls
    agent, trace, operation = calls.coded["agent_name"], calls.coded["trace_id"], calls.coded["operation"]
    turn = np.logical_or.reduce([operation.equals(o) for o in agents.TURN_OPERATIONS])
    known = (agent.codes >= 0) & (trace.codes >= 0) & turn
    width = max(trace.size, 1)
    pairs = agent.codes[known] * width + trace.codes[known]
    found, turns = np.unique(pairs, return_counts=True)
    traces = trace.texts(found % width)
    return [
        agents.Run(agent.values[int(p) // width], str(t), int(n))
        for p, t, n in zip(found, traces, turns, strict=True)
    ]


def agent_checks(store: Store, project_id: str, before: Period, after: Period) -> list[Step]:
    """Turns per run of each agent (before → after), and the runs that loop in the window."""
    history = _runs(before)
    usual, then = agents.usual_turns(history), agents.mean_turns(history)
    current = _runs(after)
    now = agents.mean_turns(current)
    out: list[Step] = [
        _check(f"turns per run ({agent})", then.get(agent), now[agent]) for agent in sorted(now)
    ]
    if now:
        found = agents.loops(store, SpanFilter(project_id, after.since, after.until), current, usual)
        out.append(AgentLoops("agent loops", [{**loop.__dict__, "text": loop.describe()} for loop in found]))
    return out
