"""The Store protocol: what ingest writes and what query/ reads, independent of the engine.

query/ decides what to compute; a store only knows how to run it on its engine. Column
names passed in (group-by, measures) are canonical field names, validated by query/ and
again by the store before they reach SQL; values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from tokentrace.canonical import FIELD_NAMES


@dataclass(frozen=True)
class SpanFilter:
    """Which spans a read covers. Every read is scoped by project."""

    project_id: str
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC
    equals: Mapping[str, Any] = field(default_factory=dict)  # canonical field → value
    name_contains: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.equals) - set(FIELD_NAMES)
        if unknown:
            raise ValueError(f"not canonical fields: {sorted(unknown)}")


@dataclass(frozen=True)
class TraceFilter:
    """Trace-list filters: a trace qualifies when its spans match `spans` and its totals pass."""

    spans: SpanFilter
    min_cost_usd: float | None = None
    min_duration_ms: float | None = None
    errors_only: bool = False


@dataclass(frozen=True)
class Project:
    project_id: str
    created_at: datetime


class Store(Protocol):
    """An engine that holds canonical spans, their content and the projects."""

    # --- lifecycle and writes --------------------------------------------------------
    def spool_position(self) -> tuple[int, int] | None:
        """The spool position covered by the last committed write, or None."""

    def write_batch(self, spans: pa.Table, content: pa.Table, spool_position: tuple[int, int] | None) -> int:
        """Insert spans and content (a repeated identity is ignored) and record the spool
        position, atomically. Returns how many spans were new."""

    def update_costs(self, project_id: str, costs: pa.Table) -> int:
        """Set cost_usd, cost_known and attributes of the spans named by (trace_id, span_id)."""

    def close(self) -> None: ...

    # --- projects --------------------------------------------------------------------
    def create_project(self, project_id: str, key_hash: str) -> None: ...

    def add_key(self, project_id: str, key_hash: str) -> None: ...

    def project_for_key(self, key_hash: str) -> str | None: ...

    def projects(self) -> list[Project]: ...

    # --- reads -----------------------------------------------------------------------
    def spans(self, f: SpanFilter, columns: tuple[str, ...], limit: int | None = None) -> pa.Table:
        """Matching spans, oldest first."""

    def trace_spans(self, project_id: str, trace_id: str) -> pa.Table:
        """Every span of a trace (canonical fields), oldest first."""

    def content(self, project_id: str, trace_id: str, span_id: str) -> dict[str, Any] | None: ...

    def trace_summaries(self, f: TraceFilter, limit: int, offset: int) -> pa.Table:
        """One row per qualifying trace, newest first: trace_id, start_time, end_time,
        duration_ms, spans, root_name, status, error_types, models, tokens, cost, tags."""

    def aggregate(self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None) -> pa.Table:
        """Requests, spans, traces, tokens by kind, cost, errors and unpriced calls per group
        (and per time bucket); duplicates (duplicate_of set) never counted."""

    def quantiles(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        quantiles: tuple[float, ...],
    ) -> pa.Table:
        """Per group: count and the quantiles of each measure over LLM calls."""

    def totals(self, project_id: str) -> dict[str, Any]:
        """Cheap whole-project counts: spans, traces, tokens, cost, unpriced spans, newest span."""

    def export(self, f: SpanFilter, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Every matching span with exactly the canonical fields, oldest first."""
