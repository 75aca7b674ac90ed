"""A verdict on one answer or session, and the score row it becomes."""

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


def score_id(evaluation: dict[str, Any]) -> str:
    """The id of an evaluation's score: the evaluator's, its version's and the span's (or the
    session's), so evaluating it again replaces the score, never adds one."""
    judged = evaluation.get("session_id")
    target = f"session:{judged}" if judged else f"{evaluation['trace_id']}:{evaluation['span_id']}"
    return f"eval:{evaluation['evaluator']}:{evaluation['version']}:{target}"


def score_row(
    evaluation: dict[str, Any], verdict: Verdict, at: datetime, session_id: str | None = None
) -> dict[str, Any]:
    """The canonical score (source `evaluator`) of a verdict on a queued evaluation's call, or on
    the session it was queued for: a session's score is given at the trace of its latest call."""
    return {
        "project_id": evaluation["project_id"],
        "score_id": score_id({**evaluation, "session_id": session_id}),
        "trace_id": evaluation["trace_id"],
        "span_id": "" if session_id else evaluation["span_id"],
        "name": evaluation["evaluator"],
        "data_type": "numeric",
        "value": verdict.score,
        "string_value": verdict.label,
        "comment": verdict.explanation,
        "source": "evaluator",
        "created_at": at,
        "session_id": session_id,
    }
