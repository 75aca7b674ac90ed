"""The two periods triage compares: the LLM calls of each, summed by slice (one attribution
dimension, or a child inside its parent)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import DERIVED_FIELDS, LLM_OPERATIONS, input_bucket
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
    "session_id",
    "service_name",
    "input_bucket",  # the input-length bucket: <1k, 1k-4k, 4k-16k, >16k
)

#: Dimensions that are who sent the calls (the rest are configuration: feature, prompt, model, …).
ACTORS = frozenset({"tenant_id", "user_id", "session_id"})


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
    *(d for d in DIMENSIONS if d not in DERIVED_FIELDS),
)


#: Dimensions whose values replace each other inside a parent (v3 → v4, mini → 4o): a new value
#: is compared with what its parent did before. Other values (a user, a tenant) are actors: new
#: ones are new traffic.
VARIANTS = frozenset({"prompt_version", "request_model", "prompt_template"})


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
    slow: int = 0  # calls slower than the baseline p95 (marked `excess_slow` by period_of)
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
        self.slow += call["excess_slow"]
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


def calls_between(
    store: Store, project_id: str, since: datetime, until: datetime, where: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The LLM calls (duplicates aside) started in [since, until), of the spans whose fields
    equal `where`'s, oldest first."""
    table = store.spans(SpanFilter(project_id, since, until, dict(where or {})), _COLUMNS)
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


def period_of(calls: list[dict[str, Any]], since: datetime, until: datetime, slow_ms: float | None) -> Period:
    total = Totals()
    slices: dict[Slice, Totals] = defaultdict(Totals)
    for row, call in enumerate(calls):
        call["excess_slow"] = slow_ms is not None and (call["duration_ms"] or 0) > slow_ms
        total.add(row, call)
        for key in _slices_of(call):
            slices[key].add(row, call)
    return Period(since, until, calls, total, dict(slices))
