"""The evaluation queue's row, shared by both stores: a (project, evaluator, version, span) an
evaluator owes, its state and when it is next due."""

from __future__ import annotations

#: The key of a queued evaluation.
KEY = ("project_id", "evaluator", "version", "trace_id", "span_id")
#: Every field of a queued evaluation, key first. `cost_usd`: what its judge's calls cost (the
#: evaluator's daily budget is the sum over the day's, so a restart does not start it again).
FIELDS = (*KEY, "state", "attempts", "due_at", "error", "updated_at", "cost_usd")
