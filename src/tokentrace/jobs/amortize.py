"""Amortize self-hosted deployments: split each UTC hour's cost over the calls the deployment
served in it, in proportion to their tokens (input + output).

A call is stored `pending` (no cost). While its hour is open, a run gives each pending call its
share of what the hour has cost so far (`estimated`: the hour's cost to this instant over the
tokens served so far); once the hour has closed, a run splits the whole hour again, so that its
calls sum to exactly `usd_per_hour` (`final`). A call that arrives after its hour closed makes the
hour unsettled, and the next run splits it again, with the late call in it. An hour with no calls
is the deployment's idle cost (query/deployments.py), owed by no call.

The split spans projects: a deployment serves every project that calls it, and each call's share
is written to its own project's span (and rollups, by Store.update_costs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow as pa

from tokentrace import semconv
from tokentrace.canonical import COST_UPDATE_SCHEMA
from tokentrace.pricing.deployments import ESTIMATED, FINAL, Deployment, hour_start, split_hour
from tokentrace.store.protocol import Store

#: How far back a run looks for calls still to settle: a call later than this past its hour
#: stays as it was (pending or estimated) until `tokentrace reprice` covers it.
LOOKBACK = timedelta(days=7)
_HOUR = timedelta(hours=1)


@dataclass
class SettleReport:
    """What one run did: hours split whole (final), hours whose new calls got an estimate, and
    the spans written."""

    hours_final: int = 0
    hours_estimated: int = 0
    spans_updated: int = 0


def settle(
    store: Store, deployments: Sequence[Deployment], now: datetime, since: datetime | None = None
) -> SettleReport:
    """Give every unsettled call of each deployment since `since` (default: LOOKBACK before
    `now`) its share of its hour, as it stands at `now`."""
    report = SettleReport()
    start = since if since is not None else now - LOOKBACK
    for deployment in deployments:
        usage = store.deployment_usage(deployment.name, hour_start(start), now + timedelta(days=1))
        for row in usage.to_pylist():
            hour = datetime.fromtimestamp(row["hour"], UTC)
            closed = hour + _HOUR <= now
            if closed and row["unsettled"]:
                report.spans_updated += _split(store, deployment, hour, None)
                report.hours_final += 1
            elif not closed and row["pending"]:
                elapsed = min(max((now - hour) / _HOUR, 0.0), 1.0)
                report.spans_updated += _split(store, deployment, hour, elapsed)
                report.hours_estimated += 1
    return report


def _split(store: Store, deployment: Deployment, hour: datetime, elapsed: float | None) -> int:
    """Split the hour whole (`elapsed` None: closed, final), or give its pending calls their
    share of the `elapsed` fraction of it (estimated); the spans written."""
    calls = store.deployment_calls(deployment.name, hour, hour + _HOUR).to_pylist()
    if not calls:
        return 0
    tokens = [c["tokens"] for c in calls]
    counted = [c["counted"] for c in calls]
    usd = deployment.usd_per_hour * (1.0 if elapsed is None else elapsed)
    shares = split_hour(usd, tokens, counted)
    settled = FINAL if elapsed is None else ESTIMATED
    provenance = deployment.provenance(settled)
    by_project: dict[str, dict[str, list]] = defaultdict(lambda: {n: [] for n in COST_UPDATE_SCHEMA.names})
    for call, share in zip(calls, shares, strict=True):
        if elapsed is not None and call["cost_usd"] is not None:
            continue  # an open hour: only the calls with no share yet get one
        attributes = orjson.loads(call["attributes"] or "{}")
        for key in semconv.PRICE_PROVENANCE:
            attributes.pop(key, None)
        attributes.update(provenance)
        columns = by_project[call["project_id"]]
        columns["trace_id"].append(call["trace_id"])
        columns["span_id"].append(call["span_id"])
        columns["cost_usd"].append(share)
        columns["cost_known"].append(True)
        columns["deployment"].append(deployment.name)
        columns["attributes"].append(orjson.dumps(attributes).decode())
    return sum(
        store.update_costs(project, pa.table(columns, schema=COST_UPDATE_SCHEMA))
        for project, columns in by_project.items()
    )
