"""Scores: of one trace, and summarized by the same tags as cost."""

from __future__ import annotations

from typing import Any

from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store


def trace_scores(store: Store, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    """Every score of a trace and of its spans (span_id "" for the trace), oldest first."""
    return records(store.scores(project_id, trace_id.lower()))


def session_scores(store: Store, project_id: str, session_id: str) -> list[dict[str, Any]]:
    """Every score given to a session as a whole (a session evaluator's, a person's), oldest first."""
    return records(store.session_scores(project_id, session_id))


def summary(
    store: Store, f: SpanFilter, group_by: tuple[str, ...] = (), name: str | None = None
) -> list[dict[str, Any]]:
    """Per score name and group: count, mean/min/max and label counts.

    For a boolean score `mean` is the share of true; for a categorical one `labels` counts
    each label. Rule scores (truncated, refusal, invalid_json) are recorded only when they
    fire, so their count is the number of calls they found."""
    rows = records(store.score_summary(f, group_by, name))
    for row in rows:
        labels = row.get("labels")
        # DuckDB's histogram arrives as a list of (label, count) pairs.
        row["labels"] = dict(labels) if labels else {}
    return rows
