"""The two periods triage compares: the LLM calls of each as columns, summed by slice (one
attribution dimension, or a child inside its parent).

A period holds its calls as numpy columns, each text field dictionary-encoded once; a slice's
totals are sums over the codes (`np.bincount`), and what a cause needs of one slice alone (its
requests, errors by type, p95, example traces) is read under the slice's mask when it is asked
for. A week of calls is a few arrays, not a million dicts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import DERIVED_FIELDS, INPUT_BUCKETS
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

#: Text fields read as codes besides the dimensions.
#: (service_tier and service_version: settings a cause may have moved with, not slices of their own)
_CODED = ("operation", "error_type", "agent_name", "service_tier", "service_version")

_COLUMNS = (
    "start_time",
    "status",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "duration_ms",
    "trace_id",
    *_CODED,
    *(d for d in DIMENSIONS if d not in DERIVED_FIELDS),
)


#: Dimensions whose values replace each other inside a parent (v3 → v4, mini → 4o): a new value
#: is compared with what its parent did before. Other values (a user, a tenant) are actors: new
#: ones are new traffic.
VARIANTS = frozenset({"prompt_version", "request_model", "prompt_template"})


Slice = tuple[tuple[str, str], ...]  # ((dimension, value), ...), parent first


@dataclass(frozen=True)
class Coded:
    """A text column as codes into its distinct values; -1 where it is null or empty. The values
    are read when asked for: a week's trace ids are half a million strings that only a few
    example traces need."""

    codes: np.ndarray
    size: int  # distinct values
    read: Callable[[], pa.Array] = field(repr=False)  # the distinct values, by code

    @cached_property
    def dictionary(self) -> pa.Array:
        return self.read()

    @cached_property
    def values(self) -> list[str]:
        return [str(v) for v in self.dictionary.to_pylist()]

    @cached_property
    def index(self) -> dict[str, int]:
        return {value: n for n, value in enumerate(self.values)}

    def equals(self, value: str) -> np.ndarray:
        return self.codes == self.index.get(value, -2)

    def texts(self, codes: np.ndarray) -> list[str | None]:
        """The values of `codes` (None for -1), read from the dictionary as one take."""
        return self.dictionary.take(pa.array(codes, mask=codes < 0)).to_pylist()


def _coded(column: pa.ChunkedArray | pa.Array) -> Coded:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    dictionary = encoded.dictionary
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    text = pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)
    empty = pc.index(dictionary, "").as_py() if text else -1
    if empty >= 0:  # an empty tag is no tag
        codes = np.where(codes == empty, -1, codes)
    return Coded(codes, len(dictionary), lambda: dictionary)


def _traces(key: pa.ChunkedArray, trace_id: pa.ChunkedArray) -> Coded:
    """The trace ids as codes, numbered by the store's 64-bit hash of each (a number hashes
    several times faster than 32 characters of text; two of a week's ~10^6 traces share a hash
    with odds of ~10^-7). Each code's text is its first call's trace_id."""
    encoded = pc.dictionary_encode(key.combine_chunks())
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    size = len(encoded.dictionary)

    def read() -> pa.Array:
        first = np.empty(size, np.int64)
        known = np.flatnonzero(codes >= 0)[::-1]
        first[codes[known]] = known  # the last write wins: each code's first row
        return trace_id.take(first).combine_chunks()

    return Coded(codes, size, read)


def _numbers(column: pa.ChunkedArray, missing: float) -> np.ndarray:
    return pc.fill_null(column, missing).to_numpy(zero_copy_only=False)


def _buckets(tokens: np.ndarray, known: np.ndarray) -> Coded:
    """The input-length bucket of each call (canonical.input_bucket, as codes)."""
    labels = [label for _, label in INPUT_BUCKETS]
    bounds = [bound for bound, _ in INPUT_BUCKETS if bound is not None]
    codes = np.searchsorted(np.array(bounds), tokens, side="right").astype(np.int64)
    codes[~known] = -1
    return Coded(codes, len(labels), lambda: pa.array(labels))


@dataclass
class Calls:
    """A period's LLM calls (duplicates aside) as columns, in the store's order (not by time)."""

    start: np.ndarray  # ns
    cost: np.ndarray  # 0 where unpriced
    input_tokens: np.ndarray  # 0 where not reported
    input_known: np.ndarray
    output_tokens: np.ndarray
    reasoning: np.ndarray  # the part of output_tokens a reasoning model spent thinking
    cache_read: np.ndarray
    duration: np.ndarray  # ms, NaN where unknown
    error: np.ndarray
    resent: np.ndarray  # an answered call after a failed one in its request: a retry's resend
    detail: np.ndarray  # its trace keeps its spans (tail sampling did not drop it)
    coded: dict[str, Coded]  # trace_id, operation, error_type, agent_name and every dimension

    @property
    def count(self) -> int:
        return len(self.start)

    def distinct(self, field: str, rows: np.ndarray) -> set[str]:
        """The field's values at `rows`, each once (nulls left out)."""
        column = self.coded[field]
        return {v for v in column.texts(np.unique(column.codes[rows])) if v is not None}

    def texts(self, field: str, rows: np.ndarray) -> list[str | None]:
        """The field's values at `rows`."""
        return self.coded[field].texts(self.coded[field].codes[rows])

    def where(self, key: Slice) -> np.ndarray:
        """Which calls the slice holds (made afresh: a mask per slice kept would hold a week's
        calls' worth of booleans for each slice looked at)."""
        found = np.ones(self.count, bool)
        for dimension, value in key:
            found &= self.coded[dimension].equals(value)
        return found

    @classmethod
    def from_table(cls, table: pa.Table) -> Calls:
        names = [name for name in (*_CODED, *DIMENSIONS) if name not in DERIVED_FIELDS]
        # Arrow encodes without the GIL: a week of calls (1.4M) 454 -> 197 ms on two cores
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            coded = dict(zip(names, pool.map(lambda name: _coded(table[name]), names), strict=True))
        coded["trace_id"] = _traces(table["trace_key"], table["trace_id"])
        input_known = pc.is_valid(table["input_tokens"]).to_numpy(zero_copy_only=False)
        input_tokens = _numbers(table["input_tokens"], 0).astype(np.int64)
        coded["input_bucket"] = _buckets(input_tokens, input_known)
        start = _numbers(table["start_time"].cast(pa.int64()), 0).astype(np.int64)
        error = pc.equal(pc.fill_null(table["status"], ""), "error").to_numpy(zero_copy_only=False)
        return cls(
            start=start,
            cost=_numbers(table["cost_usd"], 0.0).astype(np.float64),
            input_tokens=input_tokens,
            input_known=input_known,
            output_tokens=_numbers(table["output_tokens"], 0).astype(np.int64),
            reasoning=_numbers(table["reasoning_tokens"], 0).astype(np.int64),
            cache_read=_numbers(table["cache_read_tokens"], 0).astype(np.int64),
            duration=_numbers(table["duration_ms"], np.nan).astype(np.float64),
            error=error,
            resent=_resent(coded["trace_id"].codes, start, error),
            detail=pc.invert(table["sampled_out"]).to_numpy(zero_copy_only=False),
            coded=coded,
        )


def _resent(trace: np.ndarray, start: np.ndarray, error: np.ndarray) -> np.ndarray:
    """The answered calls that start after a failed call of the same request."""
    first_failure = np.full(max(int(trace.max(initial=-1)) + 1, 0), np.iinfo(np.int64).max)
    np.minimum.at(first_failure, trace[error], start[error])
    return ~error & (trace >= 0) & (start > first_failure[np.maximum(trace, 0)])


@dataclass
class Totals:
    """What a set of LLM calls adds up to; the rest is read from the calls themselves (`rows`)
    when it is asked for."""

    calls: int = 0
    answered: int = 0  # calls that did not fail (the ones that carry usage)
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    errors: int = 0
    slow: int = 0  # calls slower than the baseline p95
    of: Calls | None = field(default=None, repr=False)
    mask: Callable[[], np.ndarray] | None = field(default=None, repr=False)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @cached_property
    def rows(self) -> np.ndarray:
        """The calls' row numbers in their period."""
        if self.of is None or self.mask is None or not self.calls:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.mask())

    @cached_property
    def reasoning(self) -> int:
        """Reasoning tokens, a part of output_tokens (read from the calls: one cause asks, not
        every slice)."""
        return 0 if self.of is None else int(self.of.reasoning[self.rows].sum())

    @cached_property
    def requests(self) -> int:
        """Distinct traces: the requests these calls were made for."""
        if self.of is None:
            return 0
        traces = self.of.coded["trace_id"]
        seen = np.zeros(traces.size + 1, bool)  # (np.unique would sort them); [-1]: no trace
        seen[traces.codes[self.rows]] = True
        seen[-1] = False
        return int(np.count_nonzero(seen))

    @cached_property
    def errors_by_type(self) -> dict[str, int]:
        if self.of is None or not self.errors:
            return {}
        rows = self.rows[self.of.error[self.rows]]
        kinds = self.of.coded["error_type"]
        counts = np.bincount(kinds.codes[rows] + 1, minlength=kinds.size + 1)
        found: dict[str, int] = {}
        for code, count in enumerate(counts):
            if count:  # code 0: no type given, which reads as "other"
                name = kinds.values[code - 1] if code else "other"
                found[name] = found.get(name, 0) + int(count)
        return found

    def p95(self) -> float | None:
        return None if self.of is None else p95(self.of.duration[self.rows])


def p95(durations: np.ndarray) -> float | None:
    """The 95th percentile of the known durations (linear, as DuckDB's quantile_cont)."""
    known = durations[~np.isnan(durations)]
    return float(np.quantile(known, 0.95)) if len(known) else None


def totals_where(calls: Calls, mask: np.ndarray, slow: np.ndarray) -> Totals:
    """The totals of the calls under `mask`: counts and dot products with it, no masked copy of
    each column (over a week's 1.4M calls, 0.4 ms a sum against 3.8)."""
    count = int(np.count_nonzero(mask))
    errors = int(np.count_nonzero(calls.error & mask))
    return Totals(
        calls=count,
        answered=count - errors,
        cost=float(calls.cost @ mask),
        input_tokens=int(calls.input_tokens @ mask),
        output_tokens=int(calls.output_tokens @ mask),
        cache_read=int(calls.cache_read @ mask),
        errors=errors,
        slow=int(np.count_nonzero(slow & mask)),
        of=calls,
        mask=lambda: mask,
    )


@dataclass
class Period:
    """One side of the comparison: its bounds, its calls, and every slice's totals."""

    since: datetime
    until: datetime
    calls: Calls
    slow_calls: np.ndarray  # slower than the baseline p95
    total: Totals
    slices: dict[Slice, Totals]
    _windows: dict[timedelta, tuple[np.ndarray, int]] = field(default_factory=dict, repr=False)

    @property
    def hours(self) -> float:
        return (self.until - self.since).total_seconds() / 3600

    def rate(self, value: float) -> float:
        return value / self.hours

    def of(self, key: Slice) -> Totals:
        return self.slices.get(key) or Totals()

    def windows(self, width: timedelta) -> tuple[np.ndarray, int]:
        """The period cut into windows of `width` from its start: each call's window plus one
        (0 for a call past the last whole window), and how many whole windows there are."""
        if width not in self._windows:
            parts = int((self.until - self.since) / width)
            start, width_ns = self.since.timestamp() * 1e9, width.total_seconds() * 1e9
            part = ((self.calls.start - start) // width_ns).astype(np.int64)
            self._windows[width] = (np.where((part >= 0) & (part < parts), part + 1, 0), parts)
        return self._windows[width]

    def outside(self, key: Slice, taken: list[Slice]) -> Totals:
        """The totals of the slice's calls that no `taken` slice holds."""
        mask = self.calls.where(key)
        for other in taken:
            mask &= ~self.calls.where(other)
        return totals_where(self.calls, mask, self.slow_calls)


def calls_between(
    store: Store, project_id: str, since: datetime, until: datetime, where: Mapping[str, str] | None = None
) -> Calls:
    """The counted LLM calls started in [since, until) of the spans whose fields equal
    `where`'s: those of traces tail sampling dropped too (the store keeps their
    calls), so a sampled store gives the same numbers."""
    return Calls.from_table(
        store.llm_calls(SpanFilter(project_id, since, until, dict(where or {})), _COLUMNS)
    )


def _weights(calls: Calls, slow: np.ndarray) -> dict[str, np.ndarray | None]:
    """What each slice sums, per call (None: one per call), as the floats bincount weighs by."""
    return {
        "calls": None,
        "cost": calls.cost,
        "input_tokens": calls.input_tokens.astype(np.float64),
        "output_tokens": calls.output_tokens.astype(np.float64),
        "cache_read": calls.cache_read.astype(np.float64),
        "errors": calls.error.astype(np.float64),
        "slow": slow.astype(np.float64),
    }


def _sums(weights: dict[str, np.ndarray | None], groups: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Each total by group (`groups`: a group number per call, -1 for none)."""
    # Calls in no group count in one more, dropped after: no copy of each weight column.
    g = np.where(groups >= 0, groups, size)
    sums = {name: np.bincount(g, weights=w, minlength=size + 1)[:size] for name, w in weights.items()}
    sums["answered"] = sums["calls"] - sums["errors"]
    return sums


#: The sums a slice's Totals is made of, in its fields' order.
_SUMMED = ("calls", "answered", "cost", "input_tokens", "output_tokens", "cache_read", "errors", "slow")


def _slices(period: Period, keys: list[Slice], sums: dict[str, np.ndarray]) -> None:
    # As Python numbers in one call per column: a week holds tens of thousands of slices.
    columns = [sums[n].tolist() if n == "cost" else sums[n].astype(np.int64).tolist() for n in _SUMMED]
    for key, summed in zip(keys, zip(*columns, strict=True), strict=True):
        if summed[0]:  # calls
            # (the calls' mask, not the period's: a Totals held by the period that held the period
            # would keep a week's calls alive in a cycle until a full collection)
            period.slices[key] = Totals(*summed, period.calls, partial(period.calls.where, key))


#: A grouping's slices and its sums, one per slice.
_Sliced = tuple[list[Slice], dict[str, np.ndarray]]


def _by_dimension(weights: dict[str, np.ndarray | None], calls: Calls, dimension: str) -> _Sliced:
    column = calls.coded[dimension]
    keys = [((dimension, value),) for value in column.values]
    return keys, _sums(weights, column.codes, len(keys))


def _by_pair(weights: dict[str, np.ndarray | None], calls: Calls, parent: str, child: str) -> _Sliced:
    outer, inner = calls.coded[parent], calls.coded[child]
    width = max(inner.size, 1)
    both = (outer.codes >= 0) & (inner.codes >= 0)
    pairs = np.where(both, outer.codes.astype(np.int64) * width + inner.codes, -1)
    if outer.size * width <= 4 * calls.count + 1024:  # few enough pairs to count them all
        found = np.arange(outer.size * width)
        numbered = pairs
    else:
        found, groups = np.unique(pairs[both], return_inverse=True)
        numbered = np.full(calls.count, -1, np.int64)
        numbered[both] = groups
    sums = _sums(weights, numbered, len(found))
    present = np.flatnonzero(sums["calls"])  # only the pairs that occur
    pair = found[present]  # (read as Python ints in one call each: a week has ~10^5 pairs)
    outers = map(outer.values.__getitem__, (pair // width).tolist())
    inners = map(inner.values.__getitem__, (pair % width).tolist())
    keys = [((parent, o), (child, i)) for o, i in zip(outers, inners, strict=True)]
    return keys, {name: counts[present] for name, counts in sums.items()}


def period_of(calls: Calls, since: datetime, until: datetime, slow_ms: float | None) -> Period:
    """The period's totals, overall and by every slice."""
    with np.errstate(invalid="ignore"):
        slow = calls.duration > slow_ms if slow_ms is not None else np.zeros(calls.count, bool)
    everything = np.ones(calls.count, bool)
    period = Period(since, until, calls, slow, totals_where(calls, everything, slow), {})
    weights = _weights(calls, slow)
    groupings = [partial(_by_dimension, weights, calls, dimension) for dimension in DIMENSIONS]
    groupings += [partial(_by_pair, weights, calls, parent, child) for parent, child in NESTED]
    # numpy sums partly without the GIL: the groupings on a thread per core (a week of calls,
    # `period_of` 600 -> 490 ms on two), their slices added in order here
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        for keys, sums in pool.map(lambda sliced: sliced(), groupings):
            _slices(period, keys, sums)
    return period
