"""Triage: what changed between a window and the baseline just before it, and why.

The on-call playbook, automated. First the checks an engineer runs by hand (token rate,
calls per request, model mix, errors by model, template versions, tenant and user mix, cache
hit rate, tokens per request), then the change in cost per hour decomposed into causes:

1. *Where*: every slice of LLM calls by one attribution dimension (feature, template, version,
   model, tenant, user, …) or by a child inside its parent (a version inside its feature, a
   model inside its feature, a user inside its tenant) is scored by how much of the change it
   explains. Slices that explain it by themselves come first, the most specific first (the one
   with the least baseline cost: a new prompt version over its whole feature, a new user over
   their tenant); then slices explaining part of it, by explained share minus baseline share.
   A slice whose change is mostly inside better slices is dropped.
2. *How*: each chosen slice's change is split (log-mean Divisia, exact) into traffic
   (requests per hour), calls per request (retries, loops), tokens per call (prompt growth)
   and cost per token (model tier, cache misses). A slice new in the window is compared
   with its parent's baseline: v4 against the v3 it replaced.

p95 latency gets the same *where*, measured in excess slow calls: calls slower than the
baseline's p95, beyond the 5% the baseline itself had.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import LLM_OPERATIONS, input_bucket
from tokentrace.query import agents
from tokentrace.query.aggregates import quantile
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: Dimensions a cause can be (canonical field names).
DIMENSIONS = (
    "feature",
    "prompt_template",
    "prompt_version",
    "request_model",
    "provider",
    "tenant_id",
    "user_id",
    "service_name",
    "input_bucket",  # the input-length bucket: <1k, 1k-4k, 4k-16k, >16k
)
#: (parent, child) slices: a child value that is new inside its parent is a change of that parent.
NESTED = (
    ("feature", "prompt_version"),
    ("prompt_template", "prompt_version"),
    ("feature", "request_model"),
    ("prompt_template", "request_model"),
    ("tenant_id", "user_id"),
    ("feature", "tenant_id"),
)
_COLUMNS = (
    "trace_id",
    "agent_name",
    "start_time",
    "operation",
    "duplicate_of",
    "status",
    "error_type",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "duration_ms",
    *(d for d in DIMENSIONS if d != "input_bucket"),
)
#: Dimensions whose values replace each other inside a parent (v3 → v4, mini → 4o): a new value
#: is compared with what its parent did before. Other values (a user, a tenant) are actors: new
#: ones are new traffic.
VARIANTS = frozenset({"prompt_version", "request_model", "prompt_template"})
_MAX_CAUSES = 6
_MIN_CALLS = 5  # a slice with fewer calls on its changed side is noise, not a cause
_SUFFICIENT = 0.8  # a slice explaining this share of the change explains it by itself
_ORDER = {
    dimension: n for n, dimension in enumerate(DIMENSIONS)
}  # a slice with fewer calls on its changed side is noise, not a cause
_MIN_MECHANISM_SHARE = 0.2  # a mechanism is its own cause when it carries this much of its slice's change

Slice = tuple[tuple[str, str], ...]  # ((dimension, value), ...), parent first


@dataclass
class Totals:
    """What a set of LLM calls adds up to."""

    calls: int = 0
    answered: int = 0  # calls that did not fail (the ones that carry usage)
    traces: set[str] = field(default_factory=set)
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    errors: int = 0
    errors_by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    durations: list[float] = field(default_factory=list)
    slow: int = 0  # calls slower than the baseline p95 (marked `_slow` by _period)
    rows: list[int] = field(default_factory=list)  # row numbers, for overlap and examples

    def add(self, row: int, call: dict[str, Any]) -> None:
        self.calls += 1
        self.traces.add(call["trace_id"])
        self.cost += call["cost_usd"] or 0.0
        self.input_tokens += call["input_tokens"] or 0
        self.output_tokens += call["output_tokens"] or 0
        self.cache_read += call["cache_read_tokens"] or 0
        if call["status"] == "error":
            self.errors += 1
            self.errors_by_type[call["error_type"] or "other"] += 1
        else:
            self.answered += 1
        if call["duration_ms"] is not None:
            self.durations.append(call["duration_ms"])
        self.slow += call["_slow"]
        self.rows.append(row)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def p95(self) -> float | None:
        return quantile(self.durations, 0.95)


@dataclass
class Period:
    """One side of the comparison: its bounds, its calls, and every slice's totals."""

    since: datetime
    until: datetime
    calls: list[dict[str, Any]]
    total: Totals
    slices: dict[Slice, Totals]

    @property
    def hours(self) -> float:
        return (self.until - self.since).total_seconds() / 3600

    def rate(self, value: float) -> float:
        return value / self.hours

    def of(self, key: Slice) -> Totals:
        return self.slices.get(key) or Totals()


def _calls(store: Store, project_id: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    table = store.spans(SpanFilter(project_id, since, until), _COLUMNS)
    keep = pc.and_(pc.is_in(table["operation"], pa.array(LLM_OPERATIONS)), pc.is_null(table["duplicate_of"]))
    table = table.filter(keep)
    # Nanoseconds as integers: Python's datetime would drop them (and refuses to).
    at = table.column_names.index("start_time")
    table = table.set_column(at, "start_time", table["start_time"].cast(pa.int64()))
    calls = table.to_pylist()
    failed: set[str] = set()  # traces with a failed call so far
    for call in calls:  # oldest first
        call["input_bucket"] = input_bucket(call["input_tokens"])
        # An answered call after a failed one in the same request: a retry's resend.
        call["_resent"] = call["status"] != "error" and call["trace_id"] in failed
        if call["status"] == "error":
            failed.add(call["trace_id"])
    return calls


def _value(call: dict[str, Any], dimension: str) -> str | None:
    value = call[dimension]
    return None if value in (None, "") else str(value)


def _slices_of(call: dict[str, Any]) -> Iterable[Slice]:
    for dimension in DIMENSIONS:
        value = _value(call, dimension)
        if value is not None:
            yield ((dimension, value),)
    for parent, child in NESTED:
        outer, inner = _value(call, parent), _value(call, child)
        if outer is not None and inner is not None:
            yield ((parent, outer), (child, inner))


def _period(calls: list[dict[str, Any]], since: datetime, until: datetime, slow_ms: float | None) -> Period:
    total = Totals()
    slices: dict[Slice, Totals] = defaultdict(Totals)
    for row, call in enumerate(calls):
        call["_slow"] = slow_ms is not None and (call["duration_ms"] or 0) > slow_ms
        total.add(row, call)
        for key in _slices_of(call):
            slices[key].add(row, call)
    return Period(since, until, calls, total, dict(slices))


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


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _check(step: str, before: float | None, after: float | None) -> dict[str, Any]:
    change = None
    if before and after is not None:
        change = round(after / before - 1, 4)
    return {"step": step, "before": _round(before), "after": _round(after), "change": change}


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def checks(before: Period, after: Period) -> list[dict[str, Any]]:
    """The playbook's steps, each with its before and after."""
    b, a = before.total, after.total
    out = [
        _check("tokens per hour", before.rate(b.tokens), after.rate(a.tokens)),
        _check("cost per hour", before.rate(b.cost), after.rate(a.cost)),
        _check("requests per hour", before.rate(len(b.traces)), after.rate(len(a.traces))),
        _check("LLM calls per request", _ratio(b.calls, len(b.traces)), _ratio(a.calls, len(a.traces))),
        _check("error rate", _ratio(b.errors, b.calls), _ratio(a.errors, a.calls)),
        _check(
            "rate-limit errors per call",
            _ratio(b.errors_by_type.get("rate_limit", 0), b.calls),
            _ratio(a.errors_by_type.get("rate_limit", 0), a.calls),
        ),
        _check("tokens per request", _ratio(b.tokens, len(b.traces)), _ratio(a.tokens, len(a.traces))),
        _check("cache hit rate", _ratio(b.cache_read, b.input_tokens), _ratio(a.cache_read, a.input_tokens)),
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
                    "before": _round(_ratio(prior.errors, prior.calls)),
                    "after": _round(totals.errors / totals.calls),
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


# --- where: the slices that explain the change --------------------------------------------------
def _parent(key: Slice) -> Slice | None:
    return key[:1] if len(key) == 2 else None


def _reference(before: Period, key: Slice) -> Slice:
    """What the slice is compared with: itself, or its parent when it is (mostly) new."""
    parent = _parent(key)
    if parent is not None and key[-1][0] in VARIANTS and before.of(key).cost < 0.5 * before.of(parent).cost:
        return parent
    return key


def _outside(period: Period, key: Slice, chosen: list[Slice], measure) -> float:
    """`measure` of the slice's calls that no chosen slice holds."""
    taken: set[int] = set()
    for other in chosen:
        taken.update(period.of(other).rows)
    rest = Totals()
    for row in period.of(key).rows:
        if row not in taken:
            rest.add(row, period.calls[row])
    return measure(period, rest)


def _where(
    before: Period, after: Period, measure, direction: float, floor: float
) -> list[tuple[Slice, float, float]]:
    """The slices that explain the change, best first (see the module's *Where*): (slice,
    explained, score).

    `measure(period, totals)` is the quantity being explained (cost per hour, slow calls); a
    change under `floor` is no change."""
    change = (measure(after, after.total) - measure(before, before.total)) * direction
    base_total = measure(before, before.total)
    if change <= max(floor, 1e-12):
        return []
    scored = []
    for key in set(after.slices) | set(before.slices):
        parent = _parent(key)
        if parent is not None and all(p.of(key).calls == p.of(parent).calls for p in (before, after)):
            continue  # the only value inside its parent: the parent says the same, more plainly
        explained = (measure(after, after.of(key)) - measure(before, before.of(key))) * direction
        changed_side = after.of(key) if direction > 0 else before.of(key)
        if explained <= 0.1 * change or changed_side.calls < _MIN_CALLS:
            continue
        share = measure(before, before.of(key)) / base_total if base_total > 0 else 0.0
        explains = min(explained, change) / change
        # A slice that explains the change by itself beats any that explains part of it; among
        # those, the one that held the least before is the most specific (a new version, a new
        # user). A change spread evenly over a dominant feature still names that feature.
        score = 2 - share if explains >= _SUFFICIENT else explains - share
        scored.append((key, explained, score))
    # Ties (the same calls seen through two slices) go to the more specific slice, then to the
    # dimension listed first.
    scored.sort(key=lambda item: (-round(item[2], 6), -len(item[0]), _ORDER[item[0][0][0]], item[0]))
    chosen: list[tuple[Slice, float, float]] = []
    for key, explained, score in scored:
        keys = [other for other, _, _ in chosen]
        # What is left of its change once the better slices' calls are taken out of it.
        left = (_outside(after, key, keys, measure) - _outside(before, key, keys, measure)) * direction
        if left < 0.4 * explained:
            continue
        chosen.append((key, explained, score))
        if len(chosen) == _MAX_CAUSES:
            break
    return chosen


def _cost(period: Period, totals: Totals) -> float:
    return period.rate(totals.cost)


def _slow(period: Period, totals: Totals) -> float:
    # Slow calls as a share of all the period's calls: a partition's shares add up.
    return totals.slow / period.total.calls if period.total.calls else 0.0


# --- how: the mechanisms inside a slice -------------------------------------------------------
def _log_mean(a: float, b: float) -> float:
    if a <= 0 or b <= 0:
        return 0.0
    return a if math.isclose(a, b) else (a - b) / (math.log(a) - math.log(b))


def _factors(period: Period, totals: Totals) -> dict[str, float]:
    """cost/h = requests/h * answered calls per request * tokens per answered call * cost per
    token. Failed attempts carry no usage, so they are not a factor of cost by themselves."""
    requests = len(totals.traces)
    return {
        "traffic": period.rate(requests),
        "calls_per_request": _ratio(totals.answered, requests) or 0.0,
        "tokens_per_call": _ratio(totals.tokens, totals.answered) or 0.0,
        "cost_per_token": _ratio(totals.cost, totals.tokens) or 0.0,
    }


def _call_kind(call: dict[str, Any]) -> tuple[str, str]:
    return call["operation"], call["request_model"] or ""


def _first_try_costs(period: Period, totals: Totals) -> dict[tuple[str, str], float]:
    """Mean cost of an answered first try, per operation and model (with enough of them)."""
    costs: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in totals.rows:
        call = period.calls[row]
        if call["status"] != "error" and not call["_resent"]:
            costs[_call_kind(call)].append(call["cost_usd"] or 0.0)
    return {kind: sum(c) / len(c) for kind, c in costs.items() if len(c) >= _MIN_CALLS}


def _resend_cost(period: Period, totals: Totals, usual: dict[tuple[str, str], float]) -> float:
    """Per hour, what answered retries cost beyond a first try of the same operation and model:
    the conversation an app resends after a failure, and what it added on the way."""
    extra = 0.0
    for row in totals.rows:
        call = period.calls[row]
        if call["_resent"]:
            extra += (call["cost_usd"] or 0.0) - usual.get(_call_kind(call), call["cost_usd"] or 0.0)
    return period.rate(max(extra, 0.0))


def mechanisms(before: Period, after: Period, key: Slice, reference: Slice) -> dict[str, float]:
    """The slice's change in cost per hour, split exactly among the four factors (LMDI), with
    what retries' resends added carved out of the tokens-per-call share as `retries`."""
    now, then = after.of(key), before.of(reference)
    c_now, c_then = _cost(after, now), _cost(before, then)
    if c_then <= 0 or c_now <= 0:  # nothing to compare with: all of it is new (or gone) traffic
        return {"traffic": c_now - c_then}
    f_now, f_then = _factors(after, now), _factors(before, then)
    weight = _log_mean(c_now, c_then)
    split = {}
    for name in f_now:
        if f_now[name] > 0 and f_then[name] > 0:
            split[name] = weight * math.log(f_now[name] / f_then[name])
    usual_then = _first_try_costs(before, then)
    usual_now = usual_then | _first_try_costs(after, now)  # the window's own first tries where it has them
    retries = _resend_cost(after, now, usual_now) - _resend_cost(before, then, usual_then)
    carved = min(retries, split.get("tokens_per_call", 0.0))
    if carved > 0:
        split["tokens_per_call"] -= carved
        split["retries"] = carved
    return split


def _label(key: Slice) -> str:
    return ", ".join(f"{dimension}={value}" for dimension, value in key)


def _money(value: float) -> str:
    return f"{'+' if value >= 0 else '-'}${abs(value):,.2f}/h"


def _changed_value(before: Period, key: Slice, reference: Slice) -> str:
    """`v3→v4`: what the slice's own value replaced inside its parent, when it is new there."""
    if reference == key:
        return key[-1][1]
    dimension = key[-1][0]
    prior = [
        (totals.cost, other[-1][1])
        for other, totals in before.slices.items()
        if len(other) == 2 and other[0] == key[0] and other[-1][0] == dimension
    ]
    return f"{max(prior)[1]}→{key[-1][1]}" if prior else key[-1][1]


def _cause(
    before: Period,
    after: Period,
    key: Slice,
    reference: Slice,
    mechanism: str,
    contribution: float,
) -> dict[str, Any]:
    now, then = after.of(key), before.of(reference)
    dimension, value = key[-1]
    filters = dict(key[:-1])
    where = _label(key)
    changed = _changed_value(before, key, reference)
    if mechanism == "traffic":
        metric, b, a = (
            "requests_per_hour",
            before.rate(len(before.of(key).traces)),
            after.rate(len(now.traces)),
        )
        evidence = f"{where}: requests per hour {b:.0f}→{a:.0f} ({_money(contribution)})"
    elif mechanism in ("calls_per_request", "retries"):
        metric = "llm_calls_per_request"
        b, a = _ratio(then.calls, len(then.traces)), _ratio(now.calls, len(now.traces))
        models = sorted({after.calls[r]["request_model"] for r in now.rows} - {None, ""})
        on = f" on {', '.join(models)}" if models else ""
        evidence = f"{where}: LLM calls per request {b:.1f}→{a:.1f}{on}"
        rises = {
            kind: count / now.calls - then.errors_by_type.get(kind, 0) / max(then.calls, 1)
            for kind, count in now.errors_by_type.items()
        }
        kind = max(rises, key=rises.__getitem__, default=None)
        if kind is not None and rises[kind] > 0.05:
            share_b = then.errors_by_type.get(kind, 0) / max(then.calls, 1)
            evidence += f", {kind} errors {share_b:.0%}→{now.errors_by_type[kind] / now.calls:.0%} of calls"
            filters[dimension] = value
            dimension, value = "error_type", kind
        if mechanism == "retries":
            evidence += ": retries resend the conversation, each answer costs more"
        evidence += f" ({_money(contribution)})"
    elif mechanism == "tokens_per_call":
        # Per answered call: failed attempts carry no usage and would dilute the change.
        metric = "input_tokens_per_call"
        b, a = _ratio(then.input_tokens, then.answered) or 0.0, _ratio(now.input_tokens, now.answered) or 0.0
        out_b = _ratio(then.output_tokens, then.answered) or 0.0
        out_a = _ratio(now.output_tokens, now.answered) or 0.0
        sign = 1 if contribution >= 0 else -1
        if (out_a - out_b) * sign > (a - b) * sign:
            metric, b, a = "output_tokens_per_call", out_b, out_a
        what = "input" if metric.startswith("input") else "output"
        evidence = (
            f"{_label(key[:-1]) + ', ' if len(key) > 1 else ''}{dimension} {changed}: {what} tokens per "
            f"call {b:,.0f}→{a:,.0f} ({(a / b - 1) if b else 0:+.0%}, {_money(contribution)})"
        )
    else:  # cost_per_token
        hit_b, hit_a = _ratio(then.cache_read, then.input_tokens), _ratio(now.cache_read, now.input_tokens)
        if hit_b is not None and hit_a is not None and hit_b - hit_a > 0.1:
            metric, b, a = "cache_hit_rate", hit_b, hit_a
            evidence = f"{where}: cache hit rate {b:.0%}→{a:.0%} ({_money(contribution)})"
        else:
            metric = "cost_per_1k_tokens"
            b = (_ratio(then.cost, then.tokens) or 0.0) * 1000
            a = (_ratio(now.cost, now.tokens) or 0.0) * 1000
            evidence = (
                f"{_label(key[:-1]) + ', ' if len(key) > 1 else ''}{dimension} {changed}: cost per 1k "
                f"tokens ${b:.4f}→${a:.4f} ({_money(contribution)})"
            )
    return {
        "dimension": dimension,
        "value": value,
        "filters": filters,
        "mechanism": mechanism,
        "metric": metric,
        "before": _round(b),
        "after": _round(a),
        "contribution": _round(contribution),
        "unit": "usd_per_hour",
        "evidence": evidence,
        "example_trace_ids": _examples(after, now),
    }


def _examples(period: Period, totals: Totals, count: int = 3) -> list[str]:
    """The costliest traces of the slice in the window."""
    by_trace: dict[str, float] = defaultdict(float)
    for row in totals.rows:
        call = period.calls[row]
        by_trace[call["trace_id"]] += call["cost_usd"] or 0.0
    return [trace for trace, _ in sorted(by_trace.items(), key=lambda item: -item[1])[:count]]


def cost_causes(before: Period, after: Period) -> list[dict[str, Any]]:
    """The change in cost per hour as ranked causes: slices in the order they explain the change,
    each slice's mechanisms by contribution."""
    change = _cost(after, after.total) - _cost(before, before.total)
    direction = 1.0 if change >= 0 else -1.0
    causes = []
    # Under 2% of the baseline's cost per hour is noise, not an incident.
    floor = 0.02 * _cost(before, before.total)
    for key, _explained, _score in _where(before, after, _cost, direction, floor):
        reference = _reference(before, key)
        split = mechanisms(before, after, key, reference)
        moved = sum(v for v in split.values() if v * direction > 0)
        if moved * direction <= 0:
            continue
        found = [
            _cause(before, after, key, reference, mechanism, contribution)
            for mechanism, contribution in split.items()
            if contribution * direction >= _MIN_MECHANISM_SHARE * abs(moved)
        ]
        causes.extend(sorted(found, key=lambda cause: -abs(cause["contribution"])))
    return causes[:_MAX_CAUSES]


def latency_causes(before: Period, after: Period) -> list[dict[str, Any]]:
    """Where the window's excess slow calls (above the baseline p95) come from."""
    p95_b, p95_a = before.total.p95(), after.total.p95()
    if p95_b is None or p95_a is None:
        return []
    direction = 1.0 if p95_a >= p95_b else -1.0
    excess = _slow(after, after.total) - _slow(before, before.total)
    causes = []
    # One call in a hundred more (or fewer) over the baseline p95 is noise.
    for key, explained, _score in _where(before, after, _slow, direction, 0.01):
        dimension, value = key[-1]
        now, then = after.of(key), before.of(key)
        b, a = then.p95(), now.p95()
        share = explained / abs(excess) if excess else 0.0
        slow_then = then.slow / then.calls if then.calls else None
        slow_now = now.slow / now.calls if now.calls else 0.0
        evidence = (
            f"{_label(key)}: p95 {_ms(b)}→{_ms(a)}, calls over the baseline p95 ({p95_b:,.0f} ms) "
            f"{'n/a' if slow_then is None else f'{slow_then:.0%}'}→{slow_now:.0%}; "
            f"{share:.0%} of the excess slow calls"
        )
        causes.append(
            {
                "dimension": dimension,
                "value": value,
                "filters": dict(key[:-1]),
                "metric": "p95_latency_ms",
                "before": _round(b, 1),
                "after": _round(a, 1),
                "contribution": _round((p95_a - p95_b) * min(share, 1.0), 1),
                "unit": "ms",
                "evidence": evidence,
                "example_trace_ids": _slowest(after, now),
            }
        )
    return causes


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def _slowest(period: Period, totals: Totals, count: int = 3) -> list[str]:
    rows = sorted(totals.rows, key=lambda r: -(period.calls[r]["duration_ms"] or 0.0))
    out: list[str] = []
    for row in rows:
        trace = period.calls[row]["trace_id"]
        if trace not in out:
            out.append(trace)
        if len(out) == count:
            break
    return out


def _summary(period: Period) -> dict[str, Any]:
    t = period.total
    return {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "hours": round(period.hours, 4),
        "requests": len(t.traces),
        "llm_calls": t.calls,
        "cost_usd": round(t.cost, 6),
        "cost_per_hour": round(period.rate(t.cost), 6),
        "tokens_per_hour": round(period.rate(t.tokens), 1),
        "error_rate": _round(_ratio(t.errors, t.calls)),
        "p95_latency_ms": _round(t.p95(), 1),
    }


def triage(
    store: Store,
    project_id: str,
    window: timedelta,
    baseline: timedelta,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Compare the `window` ending at `until` (default now) with the `baseline` just before it."""
    end = until or datetime.now(UTC)
    start = end - window
    base_start = start - baseline
    before_calls = _calls(store, project_id, base_start, start)
    slow_ms = quantile([c["duration_ms"] for c in before_calls if c["duration_ms"] is not None], 0.95)
    before = _period(before_calls, base_start, start, slow_ms)
    after = _period(_calls(store, project_id, start, end), start, end, slow_ms)
    return {
        "window": _summary(after),
        "baseline": _summary(before),
        "checks": checks(before, after) + agent_checks(store, project_id, before, after),
        "causes": cost_causes(before, after),
        "latency": {
            "before_p95_ms": _round(before.total.p95(), 1),
            "after_p95_ms": _round(after.total.p95(), 1),
            "causes": latency_causes(before, after),
        },
    }
