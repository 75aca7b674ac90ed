"""Tail sampling's policy and the SQL pieces both engines build its verdicts from: why a trace
keeps its detail, the score and base-rate tests, and the CASE that names the reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tokentrace.store.filters import ScoreCondition

#: Why a trace keeps its detail, in the order they are tested (a trace gets the first it meets).
KEEP_REASONS = ("error", "cost", "slow", "score", "alert", "tenant", "user", "base_rate")


@dataclass(frozen=True)
class SamplingPolicy:
    """Which traces keep their span detail once their newest span is `recent` old; the others
    lose spans and content but keep their numbers in the rollups. `base_rate` keeps that share
    of the rest by trace id (as OpenTelemetry's TraceIdRatioBased: the same traces on every
    node); `keep_slower_than_percentile` compares a trace with traces of the same root span
    name; `keep_scores` are score conditions any of which keeps a trace; `keep_alerted` keeps
    the example traces a firing alert's notification named. `keep_for` ends a kept trace's
    detail that long after its newest span, its numbers kept as a dropped trace's are."""

    recent: timedelta = timedelta(hours=48)
    base_rate: float = 0.0
    keep_errors: bool = True
    keep_cost_above_usd: float | None = None
    keep_slower_than_percentile: float | None = 99.0
    keep_scores: tuple[ScoreCondition, ...] = ()
    keep_alerted: bool = True
    keep_tenants: tuple[str, ...] = ()
    keep_users: tuple[str, ...] = ()
    #: A trace still growing after this long is judged anyway (with what it has).
    max_open: timedelta = timedelta(days=7)
    #: How long a kept trace keeps its detail (None: until a person deletes it).
    keep_for: timedelta | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.base_rate <= 1.0:
            raise ValueError("base_rate must be between 0 and 1")
        if self.keep_slower_than_percentile is not None and not 0 < self.keep_slower_than_percentile < 100:
            raise ValueError("keep_slower_than_percentile must be between 0 and 100")
        if self.recent <= timedelta(0) or self.max_open < self.recent:
            raise ValueError("recent must be positive and max_open at least recent")
        if self.keep_for is not None and self.keep_for < self.recent:
            raise ValueError("keep_for must be at least recent")


def score_clause(
    conditions: tuple[ScoreCondition, ...], param: Callable[[str, bool], str]
) -> tuple[str, dict[str, Any]]:
    """A condition on score rows true when any of `conditions` holds, and its parameters;
    `param(name, is_text)` writes a parameter in the store's SQL."""
    clauses, params = [], {}
    for n, c in enumerate(conditions):
        text = isinstance(c.value, str)
        value = param(f"score_value_{n}", text)
        clauses.append(f"(name = {param(f'score_name_{n}', True)} AND {c.column} {c.op} {value})")
        params[f"score_name_{n}"] = c.name
        params[f"score_value_{n}"] = c.value if text else float(c.value)
    return (" OR ".join(clauses) or "false"), params


def base_rate_test(rate: float, low_bits: str) -> str:
    """OpenTelemetry's TraceIdRatioBased as SQL: `low_bits` (a trace id's low 64 bits as an
    unsigned integer, in the store's SQL) below rate * 2**64."""
    if rate >= 1.0:
        return "true"
    if rate <= 0.0:
        return "false"
    return f"{low_bits} < {int(rate * 2**64)}"


def keeps_by_base_rate(trace_id: str, rate: float) -> bool:
    """`base_rate_test` in Python (for callers and tests that check a trace's fate)."""
    return rate >= 1.0 or (rate > 0.0 and int(trace_id[16:32], 16) < int(rate * 2**64))


def keep_case(policy: SamplingPolicy, tests: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The CASE branches that give a trace's reason to be kept under `policy`, first met in
    KEEP_REASONS order (a store's SQL test for each reason in `tests`, over a trace row `t`),
    and the parameters they use: cost, tenants, users."""
    on = {
        "error": policy.keep_errors,
        "cost": policy.keep_cost_above_usd is not None,
        "slow": policy.keep_slower_than_percentile is not None,
        "score": bool(policy.keep_scores),
        "alert": policy.keep_alerted,
        "tenant": bool(policy.keep_tenants),
        "user": bool(policy.keep_users),
        "base_rate": True,
    }
    params: dict[str, Any] = {}
    if on["cost"]:
        params["cost"] = policy.keep_cost_above_usd
    if on["tenant"]:
        params["tenants"] = list(policy.keep_tenants)
    if on["user"]:
        params["users"] = list(policy.keep_users)
    case = " ".join(f"WHEN {tests[reason]} THEN '{reason}'" for reason in KEEP_REASONS if on[reason])
    return case, params
