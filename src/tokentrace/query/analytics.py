"""Rollups, latency percentiles and project totals."""

from __future__ import annotations

from typing import Any

from tokentrace.query.records import records
from tokentrace.store.base import SpanFilter, Store

QUANTILES = (0.5, 0.95, 0.99)
_Q_NAMES = ("p50", "p95", "p99")


def rollup(
    store: Store, f: SpanFilter, group_by: tuple[str, ...] = (), bucket_seconds: int | None = None
) -> list[dict[str, Any]]:
    """Requests, tokens by kind, cost, errors per group (and time bucket), with rates derived."""
    rows = records(store.aggregate(f, group_by, bucket_seconds))
    for row in rows:
        requests = row["requests"]
        row["error_rate"] = row["errors"] / requests if requests else None
        row["cost_per_request"] = row["cost_usd"] / requests if requests else None
        row["cache_hit_rate"] = (
            row["cache_read_tokens"] / row["input_tokens"] if row["input_tokens"] else None
        )
    return rows


def latency(
    store: Store,
    f: SpanFilter,
    group_by: tuple[str, ...] = (),
    measures: tuple[str, ...] = ("duration_ms", "ttft_ms"),
) -> list[dict[str, Any]]:
    """p50/p95/p99 of each measure over LLM calls, per group."""
    rows = records(store.quantiles(f, group_by, measures, QUANTILES))
    for row in rows:
        for measure in measures:
            values = row.pop(measure) or [None] * len(QUANTILES)
            row[measure] = dict(zip(_Q_NAMES, values, strict=True))
    return rows


def stats(store: Store, project_id: str, pending_spans: int = 0) -> dict[str, Any]:
    """Cheap project counts for polling; pending_spans are acked but not yet queryable."""
    return {"project_id": project_id, **store.totals(project_id), "pending_spans": pending_spans}
