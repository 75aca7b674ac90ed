"""What each kind of rule observes at an instant: per group, a value and whether it breaches.

All numbers come from tokentrace.query.measures; this module only compares them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tokentrace.alerts.rules import Rule
from tokentrace.query import agents, aggregates, measures
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store
from tokentrace.timerange import duration_text

_MIN_HISTORY = 6  # anomaly: buckets of history needed before a z-score means anything


@dataclass(frozen=True)
class Observation:
    group: dict[str, Any]
    value: float | None
    breached: bool
    detail: str  # the comparison in words, e.g. "cost_per_hour 62.1 > 50"


def _filter(rule: Rule, since: datetime, until: datetime) -> SpanFilter:
    return SpanFilter(rule.project, since, until, dict(rule.where))


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _groups(rule: Rule, group: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(rule.group_by, group, strict=True))


def _window(store: Store, rule: Rule, now: datetime, window: timedelta | None = None) -> dict:
    f = _filter(rule, now - (window or rule.window), now)
    return measures.measure(store, f, rule.group_by, rule.metric)


def threshold(store: Store, rule: Rule, now: datetime) -> list[Observation]:
    out = []
    for group, m in _window(store, rule, now).items():
        value = m["value"]
        if m["requests"] < rule.min_requests or value is None:
            continue
        high = rule.above is not None and value > rule.above
        low = rule.below is not None and value < rule.below
        bound = f"> {rule.above:g}" if high else f"< {rule.below:g}" if low else "within bounds"
        out.append(
            Observation(_groups(rule, group), value, high or low, f"{rule.metric} {_g(value)} {bound}")
        )
    return out


def baseline(store: Store, rule: Rule, now: datetime) -> list[Observation]:
    start = now - rule.window
    before = measures.measure(store, _filter(rule, start - rule.baseline, start), rule.group_by, rule.metric)
    out = []
    for group, m in _window(store, rule, now).items():
        value, reference = m["value"], before.get(group, {}).get("value")
        if m["requests"] < rule.min_requests or value is None or not reference:
            continue
        ratio = value / reference
        out.append(
            Observation(
                _groups(rule, group),
                value,
                ratio > (rule.factor or 1.2),
                f"{rule.metric} {_g(value)} is {ratio:.2f}x the {_g(reference)} of the "
                f"{duration_text(rule.baseline)} before",
            )
        )
    return out


def anomaly(store: Store, rule: Rule, now: datetime) -> list[Observation]:
    start = now - rule.window
    bucket = int(rule.window.total_seconds())
    past = measures.history(
        store, _filter(rule, start - rule.history, start), rule.group_by, rule.metric, bucket
    )
    out = []
    for group, m in _window(store, rule, now).items():
        series = past.get(group, [])
        value = m["value"]
        if m["requests"] < rule.min_requests or value is None or len(series) < _MIN_HISTORY:
            continue
        mean = sum(series) / len(series)
        std = math.sqrt(sum((x - mean) ** 2 for x in series) / (len(series) - 1))
        # A perfectly flat history would make any wobble infinite sigma: floor the spread.
        std = max(std, abs(mean) * 0.01, 1e-12)
        z = (value - mean) / std
        out.append(
            Observation(
                _groups(rule, group),
                value,
                abs(z) >= rule.z,
                f"{rule.metric} {_g(value)} is {z:+.1f} sigma from its mean {_g(mean)} "
                f"over {len(series)} windows",
            )
        )
    return out


def slo_burn(store: Store, rule: Rule, now: datetime) -> list[Observation]:
    """Multi-window burn rate: the error budget (1 - objective) spent fast over both windows."""
    budget = 1 - rule.objective
    short = measures.measure(store, _filter(rule, now - rule.short_window, now), rule.group_by, rule.metric)
    out = []
    for group, m in _window(store, rule, now).items():
        if m["requests"] < rule.min_requests or m["value"] is None:
            continue
        long_burn = m["value"] / budget
        short_value = short.get(group, {}).get("value")
        short_burn = short_value / budget if short_value is not None else 0.0
        out.append(
            Observation(
                _groups(rule, group),
                long_burn,
                long_burn >= rule.burn_rate and short_burn >= rule.burn_rate,
                f"error budget burning {long_burn:.1f}x over {duration_text(rule.window)} and "
                f"{short_burn:.1f}x over {duration_text(rule.short_window)} (limit {rule.burn_rate:g}x)",
            )
        )
    return out


def prompt_drift(store: Store, rule: Rule, now: datetime) -> list[Observation]:
    """The newest version of each template (by first use) against the version before it."""
    start = now - rule.window
    by_version = (*rule.group_by, "prompt_version")
    seen = aggregates.rollup(store, _filter(rule, now - rule.history, now), by_version)
    current = measures.measure(store, _filter(rule, start, now), by_version, rule.metric)
    earlier = measures.measure(store, _filter(rule, now - rule.history, start), by_version, rule.metric)
    versions: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for row in seen:
        if row["prompt_version"] is not None and row["prompt_template"] is not None:
            versions.setdefault(tuple(row[g] for g in rule.group_by), []).append(
                (row["first_seen"], row["prompt_version"])
            )
    out = []
    for group, found in versions.items():
        ordered = [v for _, v in sorted(found)]
        if len(ordered) < 2:
            continue
        newest, previous = ordered[-1], ordered[-2]
        now_m = current.get((*group, newest))
        before = earlier.get((*group, previous), {}).get("value")
        if not now_m or now_m["requests"] < rule.min_requests or not before or now_m["value"] is None:
            continue
        ratio = now_m["value"] / before
        factor = rule.factor or 1.3
        out.append(
            Observation(
                {**_groups(rule, group), "prompt_version": newest},
                ratio,
                ratio >= factor or ratio <= 1 / factor,
                f"{rule.metric} of {newest} is {ratio:.2f}x that of {previous} "
                f"({_g(now_m['value'])} vs {_g(before)})",
            )
        )
    return out


def agent_loop(store: Store, rule: Rule, now: datetime) -> list[Observation]:
    """Per agent: its longest run in the window against its usual turns over the history before,
    breached by a looping run (query/agents.py); the looping runs are named in the detail."""
    start = now - rule.window
    usual = agents.usual_turns(agents.runs(store, _filter(rule, start - rule.history, start)))
    window = _filter(rule, start, now)
    current = agents.runs(store, window)
    found = agents.loops(
        store, window, current, usual, factor=rule.factor or 3.0, min_turns=int(rule.above or 10)
    )
    out = []
    for agent, turns in agents.turns_by_agent(current).items():
        looping = [loop for loop in found if loop.agent == agent]
        longest = max(turns)
        if len(turns) < rule.min_requests and not looping:
            continue
        detail = "; ".join(loop.describe() for loop in looping[:3]) or (
            f"longest run {longest} turns (usually {_g(usual.get(agent))})"
        )
        out.append(Observation({"agent_name": agent}, float(longest), bool(looping), detail))
    return out


OBSERVERS: dict[str, Callable[[Store, Rule, datetime], list[Observation]]] = {
    "threshold": threshold,
    "retry_storm": threshold,
    "baseline": baseline,
    "anomaly": anomaly,
    "slo_burn": slo_burn,
    "prompt_drift": prompt_drift,
    "agent_loop": agent_loop,
}


def observe(store: Store, rule: Rule, now: datetime) -> list[Observation]:
    """Every group the rule sees at `now` with enough calls to judge."""
    return OBSERVERS[rule.kind](store, rule, now)
