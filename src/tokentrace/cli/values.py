"""Option values the server's and the client's commands both parse: durations, field lists."""

from __future__ import annotations

import math

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


def megabytes(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """A size option in MB: a positive, finite number (click's FloatRange lets nan through, and
    int() of inf stopped the server with a traceback)."""
    if not math.isfinite(value) or value <= 0:
        raise click.BadParameter(f"must be a positive number of MB, not {value}")
    return value


def labels(text: str) -> tuple[str, ...]:
    """The --metric-labels option as canonical field names."""
    from tokentrace.query.filters import FilterError, group_fields

    try:
        return group_fields(text)
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="--metric-labels") from exc
