"""Request parameters → store filters, with the short aliases the CLI and API accept."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from tokentrace.canonical import GROUPABLE_FIELDS
from tokentrace.store.filters import ScoreCondition, SpanFilter, TraceFilter
from tokentrace.timerange import parse_range

#: Friendly names → canonical fields (`--by tenant,model`, `?user=u42`).
ALIASES = {
    "model": "request_model",
    "user": "user_id",
    "tenant": "tenant_id",
    "session": "session_id",
    "template": "prompt_template",
    "prompt": "prompt_template",
    "version": "prompt_version",
    "service": "service_name",
    "env": "environment",
}
_NOT_EQUALITY = {
    "since",
    "until",
    "limit",
    "offset",
    "group_by",
    "bucket",
    "distinct",
    "name",
    "q",
    "min_cost",
    "min_cost_usd",
    "min_duration",
    "min_duration_ms",
    "errors",
    "format",
    "score",
    "score_name",
}


class FilterError(ValueError):
    """A parameter names no filterable field or has a bad value."""


def canonical_field(name: str) -> str:
    """A group-by or filter name (canonical or alias) as its canonical field."""
    field = ALIASES.get(name, name)
    if field not in GROUPABLE_FIELDS:
        allowed = ", ".join(sorted(GROUPABLE_FIELDS | set(ALIASES)))
        raise FilterError(f"{name!r} is not a field you can filter or group by; use one of: {allowed}")
    return field


def group_fields(text: str | None) -> tuple[str, ...]:
    """`tenant_id,model` → ("tenant_id", "request_model")."""
    if not text:
        return ()
    return tuple(canonical_field(part.strip()) for part in text.split(",") if part.strip())


def _float(params: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        if params.get(name) not in (None, ""):
            try:
                value = float(params[name])
            except ValueError as exc:
                raise FilterError(f"{name} must be a number") from exc
            if not math.isfinite(value):  # float() reads "nan": no trace passes it, silently
                raise FilterError(f"{name} must be a number, not {params[name]!r}")
            return value
    return None


def span_filter(project_id: str, params: Mapping[str, str]) -> SpanFilter:
    """since/until plus equality on any groupable field (or alias); `name` matches by substring."""
    since, until = parse_range(params.get("since"), params.get("until"))
    equals = {}
    for name, value in params.items():
        if name in _NOT_EQUALITY or value in (None, ""):
            continue
        equals[canonical_field(name)] = value
    return SpanFilter(project_id, since, until, equals, params.get("name") or params.get("q") or None)


def score_condition(text: str) -> ScoreCondition:
    """`helpful=0`, `quality>=0.8`, `verdict!=bad`, `refusal=true` → a ScoreCondition."""
    try:
        return ScoreCondition.parse(text)
    except ValueError as exc:
        raise FilterError(str(exc)) from exc


def trace_filter(project_id: str, params: Mapping[str, str], scores: Sequence[str] = ()) -> TraceFilter:
    """Span filters plus trace totals (min_cost in USD, min_duration_ms, errors=true) and
    score conditions (each `score=name<op>value`; a trace must meet all)."""
    return TraceFilter(
        span_filter(project_id, params),
        min_cost_usd=_float(params, "min_cost", "min_cost_usd"),
        min_duration_ms=_float(params, "min_duration_ms", "min_duration"),
        errors_only=params.get("errors", "").lower() in ("1", "true", "yes"),
        scores=tuple(score_condition(text) for text in scores if text),
    )
