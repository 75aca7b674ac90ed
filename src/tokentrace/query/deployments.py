"""What self-hosted deployments cost over a range: each hour busy or idle, the cost amortized over
the calls served, the idle cost no call owes, and how busy the hours were.

Utilization is the tokens an hour served against what its busiest minute shows the deployment can
serve: (hour's tokens / 3600 s) / (busiest minute's tokens / 60 s). An idle hour is 0. The range
is whole UTC hours, from the hour of the deployment's `valid_from` or, without one, of its first
call in the range; the hour still open counts for the part of it that has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tokentrace.pricing.deployments import Deployment, hour_start
from tokentrace.store.protocol import Store

_HOUR = timedelta(hours=1)


@dataclass
class DeploymentHour:
    hour: datetime  # its start
    hours: float  # 1, or the part of it passed (the hour still open, or cut by the range's end)
    calls: int
    tokens: int
    cost_usd: float  # what the hour costs (so far, while open): busy or idle
    amortized_usd: float  # what its calls were given of it
    utilization: float
    settled: bool  # closed, and every call's share final


@dataclass
class DeploymentReport:
    name: str
    model: str
    provider: str | None
    server_address: str | None
    usd_per_hour: float
    hours: float  # whole UTC hours in the range from the deployment's first; the open hour in part
    busy_hours: int
    idle_hours: float
    cost_usd: float  # hours at usd_per_hour
    amortized_usd: float  # on the calls (every project's)
    idle_usd: float  # the hours with no call
    calls: int
    tokens: int
    utilization: float  # mean over the hours, idle ones at 0
    peak_tokens_per_second: float  # the busiest minute's
    detail: list[DeploymentHour] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as the API answers it (instants in ISO 8601)."""
        out = asdict(self)
        out["detail"] = [{**asdict(h), "hour": h.hour.isoformat()} for h in self.detail]
        return out


def deployment_reports(
    store: Store, deployments: Sequence[Deployment], since: datetime, until: datetime, now: datetime
) -> list[DeploymentReport]:
    """Each deployment's hours in [since, until), as they stand at `now` (the hour open at `now`
    counts for the part that has passed; later hours not at all)."""
    return [_report(store, d, since, min(until, now), now) for d in deployments]


def _report(store: Store, d: Deployment, since: datetime, until: datetime, now: datetime) -> DeploymentReport:
    first = hour_start(since)
    if d.valid_from_ns:
        first = max(first, hour_start(datetime.fromtimestamp(d.valid_from_ns / 1e9, UTC)))
    found = store.deployment_usage(d.name, first, until).to_pylist() if until > first else []
    rows = {datetime.fromtimestamp(r["hour"], UTC): r for r in found}
    if not d.valid_from_ns:
        first = min(rows, default=until)  # in service from its first call in the range
    detail: list[DeploymentHour] = []
    hour = first
    while hour < until:
        part = (min(hour + _HOUR, until) - hour) / _HOUR  # below 1 for the hour still open
        row = rows.get(hour) or {
            "calls": 0,
            "tokens": 0,
            "cost_usd": 0.0,
            "unsettled": 0,
            "busiest_minute_tokens": 0,
        }
        busiest = row["busiest_minute_tokens"]
        detail.append(
            DeploymentHour(
                hour=hour,
                hours=part,
                calls=row["calls"],
                tokens=row["tokens"],
                cost_usd=d.usd_per_hour * part,
                amortized_usd=row["cost_usd"],
                utilization=row["tokens"] / (60 * busiest) if busiest else 0.0,
                settled=hour + _HOUR <= now and row["unsettled"] == 0,
            )
        )
        hour += _HOUR
    idle = [h for h in detail if not h.calls]
    return DeploymentReport(
        name=d.name,
        model=d.pattern,
        provider=d.provider,
        server_address=d.server_address,
        usd_per_hour=d.usd_per_hour,
        hours=sum(h.hours for h in detail),
        busy_hours=len(detail) - len(idle),
        idle_hours=sum(h.hours for h in idle),
        cost_usd=sum(h.cost_usd for h in detail),
        amortized_usd=sum(h.amortized_usd for h in detail),
        idle_usd=sum(h.cost_usd for h in idle),
        calls=sum(h.calls for h in detail),
        tokens=sum(h.tokens for h in detail),
        utilization=sum(h.utilization * h.hours for h in detail) / sum(h.hours for h in detail)
        if detail
        else 0.0,
        peak_tokens_per_second=max((h["busiest_minute_tokens"] for h in found), default=0) / 60,
        detail=detail,
    )
