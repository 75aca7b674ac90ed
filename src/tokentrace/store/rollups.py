"""Which rollup buckets a write touches: a span written or changed before a rollup's mark makes
its bucket (and, when its tags changed, its tag-less bucket) be recomputed; where a table with
no mark yet starts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from tokentrace.canonical import GRAINS, Grain


class Change(NamedTuple):
    """A span written or changed in a bucket a rollup may already hold: where it falls, whose
    it is, and whether its attribution tags changed (then its tag-less self's bucket did too)."""

    project_id: str
    start: datetime
    user_id: str | None
    tags_changed: bool


Cell = tuple[str, datetime, str | None]

#: Before any bucket: where a table summed from a finer one starts.
_BEGINNING = datetime(1970, 1, 1)


def first_mark(grain: Grain, target: datetime, oldest: datetime | None) -> datetime:
    """Where `grain`'s table starts rolling up when it has no mark: a table summed from a finer
    one from the beginning (every finer row so far, sampled-out ones too: a migration may have
    added it to a store whose spans are gone), one rolled up from spans at the oldest span."""
    if grain.rolled_from is not None:
        return _BEGINNING
    return min(grain.floor(oldest), target) if oldest else target


def touched_buckets(
    changes: Iterable[Change], marks: Mapping[str, datetime]
) -> list[tuple[Grain, list[Cell]]]:
    """Per rollup table with a mark (naive UTC), the buckets before it that the changes touch, as
    (project, bucket start, value of the grain's narrowing key or None), sorted."""
    if not marks:
        return []
    # A write's spans are mostly newer than every mark: drop those at once, before the per-grain
    # bucket arithmetic (a span a bucket's width past a mark cannot fall in a bucket before it).
    horizon = max(marks.values()) + timedelta(seconds=max(g.seconds for g in GRAINS))
    changes = [c for c in changes if c.start.replace(tzinfo=None) < horizon]
    out = []
    for grain in GRAINS:
        mark = marks.get(grain.table)
        cells = _cells(changes, grain, mark) if mark is not None else []
        if cells:
            out.append((grain, cells))
    return out


def _cells(changes: list[Change], grain: Grain, mark: datetime) -> list[Cell]:
    found: set[Cell] = set()
    for change in changes:
        at = grain.floor(change.start.replace(tzinfo=None))
        if at >= mark:
            continue
        if grain.narrowed_by is None:
            found.add((change.project_id, at, None))
            continue
        found.add((change.project_id, at, getattr(change, grain.narrowed_by)))
        if change.tags_changed:
            found.add((change.project_id, at, None))
    return sorted(found, key=lambda c: (c[0], c[1], c[2] or ""))
