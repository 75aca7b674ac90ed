"""Time ranges: ISO 8601 instants, or durations back from now (`15m`, `24h`, `7d`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class TimeRangeError(ValueError):
    """A time that is neither an ISO 8601 instant nor a duration like 15m."""


def parse_duration(text: str) -> timedelta:
    """`15m`, `24h`, `7d`, `1.5h` → timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise TimeRangeError(f"{text!r} is not a duration like 15m, 24h or 7d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def duration_text(delta: timedelta) -> str:
    """The shortest text parse_duration reads back as `delta` (whole seconds)."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_instant(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 instant (UTC if no offset), or a duration meaning that long before now."""
    now = now or datetime.now(UTC)
    if _DURATION.match(text):
        return now - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise TimeRangeError(
            f"{text!r} is neither an ISO 8601 instant nor a duration like 15m, 24h or 7d"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_range(
    since: str | None, until: str | None, now: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """(since, until) from their texts; either may be absent (open-ended)."""
    now = now or datetime.now(UTC)
    start = parse_instant(since, now) if since else None
    end = parse_instant(until, now) if until else None
    if start and end and end <= start:
        raise TimeRangeError("until must be after since")
    return start, end


#: Chart time buckets, smallest first; a range gets the smallest that keeps it to `points` buckets.
_BUCKETS_S = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


def bucket_for(since: datetime, until: datetime, points: int = 120) -> int:
    """Seconds per chart bucket for the range: at most `points` buckets, at least one minute."""
    seconds = (until - since).total_seconds()
    return next((b for b in _BUCKETS_S if seconds / b <= points), _BUCKETS_S[-1])
