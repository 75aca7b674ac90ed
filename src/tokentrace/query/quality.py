"""Quality: each numeric score's mean over time, by prompt version and by model, its lowest
scores with the traces they grade, and how often people's verdicts agree with it (the quality
page's numbers; the scores API's summary reads the same rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokentrace.canonical import HUMAN_SCORE
from tokentrace.query.overview import timeline
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

BY = ("prompt_version", "request_model")  # the configurations a quality move is read against
GOOD = 0.5  # a score at or above it is a good verdict, as a person's thumbs up


@dataclass
class ScoreQuality:
    """One score name over the range: its count and mean, the mean per time bucket (None where
    nothing was scored), per prompt version and per model (most scored first), and the lowest."""

    name: str
    scores: int
    mean: float | None
    over_time: list[float | None]
    by: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lowest: list[dict[str, Any]] = field(default_factory=list)
    # Of the traces a person judged too: (how many, on how many the verdicts agree).
    agreement: tuple[int, int] | None = None


@dataclass
class Quality:
    times: list[str]  # the buckets' starts (over_time's x)
    scores: list[ScoreQuality]


def quality(store: Store, f: SpanFilter, lowest: int = 10) -> Quality:
    """Every numeric score of the spans `f` selects (`f.since` is required: the range is charted)."""
    bounded, step, times = timeline(f)
    # Numeric scores, and people's thumbs (a boolean: its mean is the share of thumbs up). Rule
    # checks, boolean too, record only what they find: their mean is always 1.
    numeric = [
        r
        for r in records(store.score_summary(bounded, (), None))
        if r["data_type"] == "numeric" or r["name"] == HUMAN_SCORE
    ]
    index = {t: i for i, t in enumerate(times)}
    found = {r["name"]: ScoreQuality(r["name"], r["scores"], r["mean"], [None] * len(times)) for r in numeric}
    for row in records(store.score_summary(bounded, (), None, bucket_seconds=step)):
        score = found.get(row["name"])
        if score is not None and row["bucket"] in index:
            score.over_time[index[row["bucket"]]] = row["mean"]
    for key in BY:
        for row in records(store.score_summary(bounded, (key,), None)):
            score = found.get(row["name"])
            if score is not None:
                score.by.setdefault(key, []).append(
                    {"value": row[key], "scores": row["scores"], "mean": row["mean"]}
                )
    for score in found.values():
        for key in BY:
            score.by.setdefault(key, []).sort(key=lambda g: (-g["scores"], str(g["value"])))
        score.lowest = records(store.lowest_scores(bounded, score.name, lowest))
    if HUMAN_SCORE in found:
        _agreement(store, bounded, found)
    return Quality(times, sorted(found.values(), key=lambda s: s.name))


def _agreement(store: Store, f: SpanFilter, found: dict[str, ScoreQuality]) -> None:
    """Per score, on the traces a person also judged: how often the score's verdict (its mean on
    the trace, good at GOOD or above) is theirs."""
    by_trace: dict[str, dict[str, float]] = {}
    for row in records(store.score_means_by_trace(f, tuple(found))):
        by_trace.setdefault(row["trace_id"], {})[row["name"]] = row["mean"]
    for name, score in found.items():
        if name == HUMAN_SCORE:
            continue
        judged = [
            (t[name] >= GOOD, t[HUMAN_SCORE] >= GOOD)
            for t in by_trace.values()
            if name in t and HUMAN_SCORE in t
        ]
        if judged:
            score.agreement = (len(judged), sum(mine == theirs for mine, theirs in judged))
