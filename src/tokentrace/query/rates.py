"""The rates an aggregate's rows imply (cost per request, error rate, cache hit rate, …), computed
over its columns: a month of users is 5,000 rows, and a dict of rates built per row cost as much
as the SQL that summed them.

A "request" is one LLM call; per-request usage and cost divide by answered calls, since a failed
call reports no usage (so a retry loop shows as dearer answers, not as cheaper calls). A "trace"
is one user request.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tokentrace.canonical import ERROR_TYPES
from tokentrace.query.records import records

#: (rate, numerator, denominator); `attempts` is every LLM call (an app's own retry loop makes
#: each resend a call) plus the resends an SDK's retry loop made below a call: per answered
#: call, 1.0 means no retries.
RATES = (
    ("error_rate", "errors", "requests"),
    ("cost_per_request", "cost_usd", "answered"),
    ("tokens_per_request", "total_tokens", "answered"),
    ("input_tokens_per_request", "input_tokens", "answered"),
    ("cost_per_trace", "cost_usd", "traces"),
    ("tokens_per_trace", "total_tokens", "traces"),
    ("cost_per_session", "cost_usd", "sessions"),
    ("cost_per_user", "cost_usd", "users"),
    ("cache_hit_rate", "cache_read_tokens", "input_tokens"),
    ("output_input_ratio", "output_tokens", "input_tokens"),
    ("attempts_per_request", "attempts", "answered"),
    ("retry_rate", "retries", "attempts"),
    ("truncation_rate", "truncated", "answered"),
)
_ERROR_COLUMNS = tuple(f"errors_{t}" for t in ERROR_TYPES)
# (not pa.scalar(None, …): a scalar from a Python value makes pyarrow import pandas, ~40 MB)
_NONE = pa.nulls(1, pa.float64())[0]


def ratio(numerator: pa.ChunkedArray, denominator: pa.ChunkedArray) -> pa.ChunkedArray:
    """numerator / denominator as floats; null where either is null or the denominator is 0."""
    top, bottom = pc.cast(numerator, pa.float64()), pc.cast(denominator, pa.float64())
    usable = pc.and_(pc.is_valid(top), pc.not_equal(pc.fill_null(bottom, 0.0), 0.0))
    return pc.if_else(usable, pc.divide(top, bottom), _NONE)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name in table.column_names:
        return table[name]
    return pa.chunked_array([pa.nulls(table.num_rows, pa.float64())])


def _shares(table: pa.Table) -> pa.Table:
    """Each group's share of its time bucket's (or the whole range's) requests and cost."""
    if "bucket" in table.column_names:
        buckets = pc.dictionary_encode(table["bucket"].combine_chunks()).indices.to_numpy(
            zero_copy_only=False
        )
    else:
        buckets = np.zeros(table.num_rows, np.int64)
    for name, column in (("share_of_requests", "requests"), ("share_of_cost", "cost_usd")):
        values = pc.fill_null(table[column], 0).to_numpy().astype(np.float64)
        totals = np.bincount(buckets, weights=values)[buckets] if table.num_rows else values
        table = table.append_column(name, ratio(pa.chunked_array([values]), pa.chunked_array([totals])))
    return table


def derived_rows(table: pa.Table, shares: bool = False) -> list[dict[str, Any]]:
    """The aggregate's rows as dicts, each with its rates and `errors_by_type` (the error types it
    had, from its errors_<type> columns); with `shares`, each group's share of its bucket's
    requests and cost (model mix)."""
    columns = {name: _column(table, name) for name in ("traces", "sessions", "users")}
    columns["attempts"] = pc.add(table["requests"], _column(table, "http_resends"))
    every = {**{n: table[n] for n in table.column_names}, **columns}
    rated = table.drop_columns([c for c in _ERROR_COLUMNS if c in table.column_names])
    for name in ("traces", "sessions", "users"):
        if name not in rated.column_names:
            rated = rated.append_column(name, columns[name])
    for name, numerator, denominator in RATES:
        rated = rated.append_column(name, ratio(every[numerator], every[denominator]))
    if shares:
        rated = _shares(rated)
    rows = records(rated)
    for row in rows:
        row["errors_by_type"] = {}
    present = [t for t in ERROR_TYPES if f"errors_{t}" in table.column_names]
    if present and rows:
        # the few rows with errors, found in numpy (a dict per row and type cost ~5 ms a 5k rows)
        counts = np.column_stack([pc.fill_null(table[f"errors_{t}"], 0).to_numpy() for t in present])
        for i, j in zip(*np.nonzero(counts), strict=True):
            rows[i]["errors_by_type"][present[j]] = int(counts[i, j])
    return rows
