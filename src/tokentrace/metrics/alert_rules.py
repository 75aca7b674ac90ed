"""`tokentrace prometheus-rules`: the TOML rules as Prometheus alerting rules over /metrics.

Each kind keeps its meaning in PromQL; prompt_drift, which compares a template's newest
version with the one before (an order PromQL cannot see), becomes the template's input tokens
per call against its own history.
"""

from __future__ import annotations

import re
from typing import Any

from tokentrace.alerts.rules import Rule
from tokentrace.metrics.promql import NoPromQL, expression
from tokentrace.timerange import duration_text


def alert_name(rule: Rule) -> str:
    """A valid Prometheus alert name: `retry storm` → `RetryStorm`."""
    words = re.findall(r"[A-Za-z0-9]+", rule.name)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Rule"
    return name if name[0].isalpha() else f"Rule{name}"


def _expr(rule: Rule, labels: tuple[str, ...]) -> str:
    window = duration_text(rule.window)

    def of(measure: str = rule.metric, over: str = window, offset: str | None = None) -> str:
        return expression(
            measure,
            over,
            by=rule.group_by,
            where=rule.where,
            labels=labels,
            offset=offset,
            project=rule.project,
        )

    on = f"on({', '.join(rule.group_by)})"
    enough = f"({of('requests')}) >= {rule.min_requests}"
    if rule.kind in ("threshold", "retry_storm"):
        parts = []
        if rule.above is not None:
            parts.append(f"({of()}) > {rule.above:g}")
        if rule.below is not None:
            parts.append(f"({of()}) < {rule.below:g}")
        condition = " or ".join(parts)
    elif rule.kind == "baseline":
        condition = f"({of()}) > {rule.factor:g} * ({of(over=duration_text(rule.baseline), offset=window)})"
    elif rule.kind == "anomaly":
        history = f"[{duration_text(rule.history)}:{window}]"
        condition = (
            f"abs(({of()}) - avg_over_time(({of()}){history} offset {window})) "
            f"/ stddev_over_time(({of()}){history} offset {window}) >= {rule.z:g}"
        )
    elif rule.kind == "slo_burn":
        budget = 1 - rule.objective
        short = duration_text(rule.short_window)
        burn = f"{budget:g} > {rule.burn_rate:g}"
        condition = f"({of()}) / {burn} and {on} ({of(over=short)}) / {burn}"
    else:  # prompt_drift
        before = of(over=duration_text(rule.history), offset=window)
        factor = rule.factor or 1.3
        condition = f"({of()}) > {factor:g} * ({before}) or ({of()}) < ({before}) / {factor:g}"
    return f"({condition}) and {on} ({enough})"


def prometheus_rule(rule: Rule, labels: tuple[str, ...]) -> dict[str, Any]:
    """One alerting rule; raises NoPromQL when /metrics cannot express it."""
    spec: dict[str, Any] = {"alert": alert_name(rule), "expr": _expr(rule, labels)}
    if rule.for_:
        spec["for"] = duration_text(rule.for_)
    spec["labels"] = {"severity": rule.severity, "tokentrace_rule": rule.name, "kind": rule.kind}
    spec["annotations"] = {"summary": f"{rule.name}: {rule.describe()}"}
    if rule.description:
        spec["annotations"]["description"] = rule.description
    return spec


def rule_groups(rules: tuple[Rule, ...], labels: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    """A Prometheus rules document ({"groups": [...]}) and, for each rule left out, why."""
    out, skipped = [], []
    for rule in rules:
        try:
            out.append(prometheus_rule(rule, labels))
        except NoPromQL as exc:
            skipped.append(f"{rule.name}: {exc}")
    return {"groups": [{"name": "tokentrace", "rules": out}]}, skipped
