"""Quality in triage: each score's mean before and after, overall and by the slices a change
usually comes from (prompt version, template, feature, model), the slices that moved most
first: "prompt_version v4: groundedness 0.91 → 0.62"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: Where a quality change is looked for, the overall one first.
DIMENSIONS = ((), ("prompt_version",), ("prompt_template",), ("feature",), ("request_model",))
MATERIAL = 0.1  # a mean moving less than this is noise, not a change
MIN_SCORES = 3  # fewer scores in either period is no evidence
SHOWN = 8


@dataclass(slots=True)
class QualityChange:
    """One score's mean in a slice (all calls when `group` is empty), before and after."""

    score: str
    group: dict[str, str]
    before_mean: float | None
    after_mean: float | None
    before_scores: int
    after_scores: int
    change: float | None
    evidence: str


def _means(
    store: Store,
    project_id: str,
    since: datetime,
    until: datetime,
    where: Mapping[str, str],
    by: tuple[str, ...],
) -> dict[tuple[str, tuple], tuple[float, int]]:
    f = SpanFilter(project_id, since, until, dict(where))
    found = {}
    for row in records(store.score_summary(f, by, None)):
        if row["data_type"] != "numeric" or row["mean"] is None:
            continue
        found[(row["name"], tuple(row[g] for g in by))] = (row["mean"], row["scores"])
    return found


def quality_changes(
    store: Store,
    project_id: str,
    before: tuple[datetime, datetime],
    after: tuple[datetime, datetime],
    where: Mapping[str, str] | None = None,
) -> list[QualityChange]:
    """The material moves of numeric scores between the periods: overall, then the slices that
    moved most (a slice new in the window, or with fewer than MIN_SCORES before it, as a rollout
    starts, is compared with the whole baseline)."""
    where = where or {}
    changes: list[QualityChange] = []
    overall: dict[str, tuple[float | None, int, int]] = {}  # score: (mean and count before, count after)
    for by in DIMENSIONS:
        new = _means(store, project_id, *after, where, by)
        if not new:
            return []  # nothing scored in the window (every slice is part of all calls)
        old = _means(store, project_id, *before, where, by)
        for (score, group), (mean, count) in new.items():
            if not by:
                overall[score] = (*old.get((score, group), (None, 0)), count)  # type: ignore[assignment]
            elif any(v is None for v in group):
                continue  # calls without the field: no slice of their own
            found = old.get((score, group))
            was, had, everything = overall.get(score, (None, 0, 0))
            if by and found is not None and found[1] == had and count == everything:
                continue  # the slice is every call in both periods: the overall change says it
            if found is not None and found[1] >= MIN_SCORES:
                was, had = found  # else new in the window (or its first few calls came before)
            if was is None or count < MIN_SCORES or had < MIN_SCORES or abs(mean - was) < MATERIAL:
                continue
            named = dict(zip(by, (str(v) for v in group), strict=True))
            slice_name = ", ".join(f"{k} {v}" for k, v in named.items()) or "all calls"
            changes.append(
                QualityChange(
                    score,
                    named,
                    round(was, 4),
                    round(mean, 4),
                    had,
                    count,
                    round(mean - was, 4),
                    f"{slice_name}: {score} {was:.2f} → {mean:.2f} ({had} → {count} scores)",
                )
            )
    overall_first = sorted(changes, key=lambda c: (bool(c.group), c.change if c.change is not None else 0))
    return overall_first[:SHOWN]
