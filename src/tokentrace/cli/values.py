"""Option values the server's and the client's commands both parse: durations, field lists."""

from __future__ import annotations

import click


def interval(text: str, option: str = "--alert-interval") -> float:
    """A duration option (30s, 10m, 1h) in seconds, at least one."""
    from tokentrace.timerange import TimeRangeError, parse_duration

    try:
        seconds = parse_duration(text).total_seconds()
    except TimeRangeError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc
    if seconds < 1:
        raise click.BadParameter("must be at least 1s", param_hint=option)
    return seconds


def labels(text: str) -> tuple[str, ...]:
    """The --metric-labels option as canonical field names."""
    from tokentrace.query.filters import FilterError, group_fields

    try:
        return group_fields(text)
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="--metric-labels") from exc
