"""A verdict on one answer, and the score row it becomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """What an evaluator said: a score from 0 (bad) to 1 (good), a label, and why."""

    score: float
    label: str | None = None
    explanation: str | None = None


def score_row(
    project_id: str,
    trace_id: str,
    span_id: str,
    evaluator: str,
    version: str,
    verdict: Verdict,
    at: datetime,
) -> dict[str, Any]:
    """The canonical score of a verdict (source `evaluator`), its id from the evaluator, its
    version and the span: evaluating a span again replaces its score, never adds one."""
    return {
        "project_id": project_id,
        "score_id": f"eval:{evaluator}:{version}:{trace_id}:{span_id}",
        "trace_id": trace_id,
        "span_id": span_id,
        "name": evaluator,
        "data_type": "numeric",
        "value": verdict.score,
        "string_value": verdict.label,
        "comment": verdict.explanation,
        "source": "evaluator",
        "created_at": at,
    }
