"""What a sampling policy keeps: `tokentrace sampling simulate` and the API's report on the
traces still stored, judged as the policy would judge them now."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import pyarrow.compute as pc

from tokentrace.store.protocol import Store
from tokentrace.store.sampling import KEEP_REASONS, SamplingPolicy


@dataclass(slots=True)
class Kept:
    """How much of a quantity the policy keeps: in all, kept, and the share kept (None of none)."""

    total: float
    kept: float
    share: float | None


@dataclass(slots=True)
class SamplingReport:
    """What a policy keeps over a range: traces, spans, detail bytes, cost and error traces, and
    how many traces each keep reason holds."""

    project_id: str
    since: str
    until: str
    traces: Kept
    kept_because: dict[str, int]
    spans: Kept
    detail_bytes: Kept
    cost_usd: Kept
    error_traces: Kept


def _kept(total: float, kept: float) -> Kept:
    return Kept(total, kept, kept / total if total else None)


def simulate(
    store: Store, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
) -> SamplingReport:
    """Traces, spans, detail bytes (span attributes and content text), error traces and cost,
    in all and in the traces the policy keeps, with the count kept for each reason. Traces whose
    detail an applied policy already dropped are not stored, so they are not counted here; their
    numbers are in the rollups either way."""
    verdicts = store.simulate_sampling(project_id, policy, since, until)
    kept = verdicts.filter(pc.is_valid(verdicts["kept_because"]))
    errors = verdicts.filter(verdicts["has_error"])

    def summed(column: str) -> Kept:
        return _kept(pc.sum(verdicts[column]).as_py() or 0, pc.sum(kept[column]).as_py() or 0)

    reasons = Counter(kept["kept_because"].to_pylist())
    return SamplingReport(
        project_id=project_id,
        since=since.isoformat(),
        until=until.isoformat(),
        traces=_kept(verdicts.num_rows, kept.num_rows),
        kept_because={r: reasons[r] for r in KEEP_REASONS if reasons[r]},
        spans=summed("spans"),
        detail_bytes=summed("detail_bytes"),
        cost_usd=summed("cost_usd"),
        error_traces=_kept(errors.num_rows, errors.filter(pc.is_valid(errors["kept_because"])).num_rows),
    )
