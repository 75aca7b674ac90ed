"""What a sampling policy keeps: `tokentrace sampling simulate` and the API's report on the
traces still stored, judged as the policy would judge them now."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import pyarrow.compute as pc

from tokentrace.store.protocol import Store
from tokentrace.store.sampling import KEEP_REASONS, SamplingPolicy


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def simulate(
    store: Store, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
) -> dict[str, Any]:
    """Traces, spans, detail bytes (span attributes and content text), error traces and cost,
    in all and in the traces the policy keeps, with the count kept for each reason. Traces whose
    detail an applied policy already dropped are not stored, so they are not counted here; their
    numbers are in the rollups either way."""
    verdicts = store.simulate_sampling(project_id, policy, since, until)
    kept = verdicts.filter(pc.is_valid(verdicts["kept_because"]))
    errors = verdicts.filter(verdicts["has_error"])

    def total(table, column: str) -> float:
        return pc.sum(table[column]).as_py() or 0

    reasons = Counter(kept["kept_because"].to_pylist())
    out: dict[str, Any] = {
        "project_id": project_id,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "traces": {
            "total": verdicts.num_rows,
            "kept": kept.num_rows,
            "share": _share(kept.num_rows, verdicts.num_rows),
        },
        "kept_because": {r: reasons[r] for r in KEEP_REASONS if reasons[r]},
    }
    for name, column in (("spans", "spans"), ("detail_bytes", "detail_bytes"), ("cost_usd", "cost_usd")):
        whole, part = total(verdicts, column), total(kept, column)
        out[name] = {"total": whole, "kept": part, "share": _share(part, whole)}
    kept_errors = errors.filter(pc.is_valid(errors["kept_because"])).num_rows
    out["error_traces"] = {
        "total": errors.num_rows,
        "kept": kept_errors,
        "share": _share(kept_errors, errors.num_rows),
    }
    return out
