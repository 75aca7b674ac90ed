"""Quality: each numeric score's mean over time, by prompt version and by model, and its lowest
scores with the traces they grade (the quality page's numbers; the scores API's summary reads
the same rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokentrace.query.overview import timeline
from tokentrace.query.records import records
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

BY = ("prompt_version", "request_model")  # the configurations a quality move is read against


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


@dataclass
class Quality:
    times: list[str]  # the buckets' starts (over_time's x)
    scores: list[ScoreQuality]


def quality(store: Store, f: SpanFilter, lowest: int = 10) -> Quality:
    """Every numeric score of the spans `f` selects (`f.since` is required: the range is charted)."""
    bounded, step, times = timeline(f)
    numeric = [r for r in records(store.score_summary(bounded, (), None)) if r["data_type"] == "numeric"]
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
    return Quality(times, sorted(found.values(), key=lambda s: s.name))
