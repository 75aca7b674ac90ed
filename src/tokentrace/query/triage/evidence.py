"""The words and examples a cause is shown with: slice labels, money and milliseconds, the
example traces."""

from __future__ import annotations

from collections import defaultdict

from tokentrace.pricing.amounts import usd
from tokentrace.query.triage.periods import Period, Slice, Totals


def slice_label(key: Slice) -> str:
    return ", ".join(f"{dimension}={value}" for dimension, value in key)


def money(value: float) -> str:
    """A change in spend per hour: `+$0.42/h`."""
    return f"{usd(value, signed=True)}/h"


def changed_value(before: Period, key: Slice, reference: Slice) -> str:
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


def example_traces(period: Period, totals: Totals, count: int = 3) -> list[str]:
    """The costliest traces of the slice in the window."""
    by_trace: dict[str, float] = defaultdict(float)
    for row in totals.rows:
        call = period.calls[row]
        by_trace[call["trace_id"]] += call["cost_usd"] or 0.0
    return [trace for trace, _ in sorted(by_trace.items(), key=lambda item: -item[1])[:count]]


def milliseconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def slowest_traces(period: Period, totals: Totals, count: int = 3) -> list[str]:
    rows = sorted(totals.rows, key=lambda r: -(period.calls[r]["duration_ms"] or 0.0))
    out: list[str] = []
    for row in rows:
        trace = period.calls[row]["trace_id"]
        if trace not in out:
            out.append(trace)
        if len(out) == count:
            break
    return out
