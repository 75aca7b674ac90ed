"""The words and examples a cause is shown with: slice labels, money and milliseconds, the
example traces."""

from __future__ import annotations

import numpy as np

from tokentrace.pricing.amounts import usd
from tokentrace.query.triage.periods import ACTORS, Period, Slice, Totals

#: How a dimension's value is said: `user u2`, `version v4`, `inputs >16k tokens`.
_WORDS = {
    "feature": "feature {}",
    "prompt_template": "prompt {}",
    "prompt_version": "version {}",
    "request_model": "model {}",
    "provider": "provider {}",
    "tenant_id": "tenant {}",
    "user_id": "user {}",
    "session_id": "session {}",
    "service_name": "service {}",
    "input_bucket": "inputs {} tokens",
}


def said(dimension: str, value: str) -> str:
    """One dimension's value as people say it: `user u2`."""
    return _WORDS.get(dimension, dimension + " {}").format(value)


def slice_label(key: Slice) -> str:
    """A slice as people say it: `feature refund-chat, version v4`; an actor inside another names
    the inner one first: `user u2 (tenant acme)`."""
    if len(key) == 2 and key[0][0] in ACTORS and key[-1][0] in ACTORS:
        return f"{said(*key[-1])} ({said(*key[0])})"
    return ", ".join(said(dimension, value) for dimension, value in key)


def sender(period: Period, totals: Totals) -> str:
    """Who sent a slice's calls, when one user did: `user u2 (tenant acme)`; else empty."""
    users = set(period.calls.texts("user_id", totals.rows))
    tenants = set(period.calls.texts("tenant_id", totals.rows)) - {None}
    if len(users) != 1 or None in users:
        return ""
    tenant = f" (tenant {next(iter(tenants))})" if len(tenants) == 1 else ""
    return f"user {next(iter(users))}{tenant}"


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
    """The costliest traces of the slice in the window, those whose spans are still stored
    first (tail sampling may have dropped the others)."""
    rows = totals.rows
    traces = period.calls.coded["trace_id"]
    codes = traces.codes[rows]
    known = codes >= 0
    found, inverse = np.unique(codes[known], return_inverse=True)
    costs = np.bincount(inverse, weights=period.calls.cost[rows][known], minlength=len(found))
    stored = np.bincount(inverse, weights=period.calls.detail[rows][known], minlength=len(found)) > 0
    order = np.lexsort((-costs, ~stored))[:count]  # stored first, then by cost
    return [str(t) for t in traces.texts(found[order])]


def milliseconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"


def slowest_traces(period: Period, totals: Totals, count: int = 3) -> list[str]:
    """The traces of the slice's slowest calls, those whose spans are still stored first."""
    rows = totals.rows
    durations = np.nan_to_num(period.calls.duration[rows], nan=0.0)
    return _first_traces(period, rows[np.lexsort((-durations, ~period.calls.detail[rows]))], count)


def failed_traces(period: Period, totals: Totals, count: int = 3) -> list[str]:
    """The traces of the slice's failed calls, those whose spans are still stored first."""
    rows = totals.rows[period.calls.error[totals.rows]]
    return _first_traces(period, rows[np.argsort(~period.calls.detail[rows], kind="stable")], count)


def _first_traces(period: Period, rows: np.ndarray, count: int) -> list[str]:
    """The first `count` distinct traces of the calls at `rows`, in their order."""
    out: list[str] = []
    for trace in period.calls.texts("trace_id", rows):
        if trace is not None and trace not in out:
            out.append(trace)
        if len(out) == count:
            break
    return out
