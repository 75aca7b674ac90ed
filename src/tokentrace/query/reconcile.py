"""The provider's bill against what was traced, per UTC day and model: billed, traced, the gap in
dollars and percent, and the likely reasons for it.

Models are matched without their snapshot date (`gpt-4o-2024-08-06` and `gpt-4o` are one model,
`claude-sonnet-4-20250514` and `claude-sonnet-4` too), since a bill names the snapshot and a
span may name either. Traced numbers come from the rollups, so calls whose detail tail sampling
dropped still count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tokentrace.query import aggregates
from tokentrace.query.invoices import Billed
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: A gap within this share of the bill (or a micro-dollar, or a token) is a match: rounding, a
#: price's last digits.
TOLERANCE = 0.01
_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
_NOT_A_MODEL = "(not a model)"
_EVERY_MODEL = "(every model)"  # an export not broken out by model: days are compared whole
_DEFAULT_TIERS = frozenset({None, "default", "standard", "auto", "on_demand"})


def model_key(model: str | None) -> str:
    """A model's name without its snapshot date, lower case: what bill and spans are matched by."""
    if not model:
        return _NOT_A_MODEL
    return _DATED.sub("", model.strip().lower())


@dataclass
class Row:
    """One day and model: what the provider billed and what was traced, and why they differ."""

    day: str
    model: str
    billed_usd: float | None = None  # None: the export has no dollars (a usage export)
    traced_usd: float = 0.0
    gap_usd: float | None = None
    gap_pct: float | None = None
    billed_input_tokens: int | None = None
    billed_output_tokens: int | None = None
    traced_input_tokens: int = 0
    traced_output_tokens: int = 0
    billed_requests: int | None = None
    traced_requests: int = 0
    unpriced_calls: int = 0
    billed_items: list[str] = field(default_factory=list)
    billed_tiers: dict[str, float] = field(default_factory=dict)  # tier → USD (or tokens)
    reasons: list[str] = field(default_factory=list)
    matches: bool = False


@dataclass
class Reconciliation:
    provider: str
    since: str
    until: str
    billed_usd: float | None
    traced_usd: float
    gap_usd: float | None
    gap_pct: float | None
    rows: list[Row]


def _add(total: int | float | None, value: int | float | None) -> Any:
    if value is None:
        return total
    return (total or 0) + value


def _billed_rows(billed: list[Billed], by_model: bool) -> dict[tuple[str, str], Row]:
    rows: dict[tuple[str, str], Row] = {}
    for line in billed:
        key = (line.day.isoformat(), model_key(line.model) if by_model else _EVERY_MODEL)
        row = rows.get(key) or rows.setdefault(key, Row(*key))
        row.billed_usd = _add(row.billed_usd, line.usd)
        row.billed_input_tokens = _add(row.billed_input_tokens, line.input_tokens)
        row.billed_output_tokens = _add(row.billed_output_tokens, line.output_tokens)
        row.billed_requests = _add(row.billed_requests, line.requests)
        if line.item not in row.billed_items:
            row.billed_items.append(line.item)
        if line.tier not in _DEFAULT_TIERS:
            amount = (
                line.usd if line.usd is not None else (line.input_tokens or 0) + (line.output_tokens or 0)
            )
            row.billed_tiers[line.tier] = row.billed_tiers.get(line.tier, 0) + amount
    return rows


def _traced(store: Store, project_id: str, provider: str, since: datetime, until: datetime) -> list[dict]:
    f = SpanFilter(project_id, since, until, {"provider": provider})
    return aggregates.rollup(store, f, ("request_model", "response_model"), 86400, distinct=False)


def reconcile(store: Store, project_id: str, provider: str, billed: list[Billed]) -> Reconciliation:
    """Compare the billed lines of `provider` with the project's traced calls of that provider,
    over the whole days the bill covers; per model where the export breaks its lines out by model
    (OpenAI: `group_by=line_item`; Anthropic: `group_by[]=description`), else per day."""
    days = sorted({line.day for line in billed})
    if not days:
        raise ValueError("the export holds no billed line")
    since = datetime.combine(days[0], datetime.min.time(), UTC)
    until = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), UTC)
    by_model = any(line.model for line in billed)
    rows = _billed_rows(billed, by_model)
    for traced in _traced(store, project_id, provider, since, until):
        model = model_key(traced["response_model"] or traced["request_model"]) if by_model else _EVERY_MODEL
        key = (traced["bucket"][:10], model)
        row = rows.get(key) or rows.setdefault(key, Row(*key))
        row.traced_usd += traced["cost_usd"]
        row.traced_input_tokens += traced["input_tokens"]
        row.traced_output_tokens += traced["output_tokens"]
        row.traced_requests += traced["requests"]
        row.unpriced_calls += traced["unpriced_spans"]
    for row in rows.values():
        _judge(row)
    ordered = sorted(rows.values(), key=lambda r: (r.day, -(r.billed_usd or 0), r.model))
    billed_usd = (
        None if all(r.billed_usd is None for r in ordered) else sum(r.billed_usd or 0 for r in ordered)
    )
    traced_usd = sum(r.traced_usd for r in ordered)
    gap = None if billed_usd is None else billed_usd - traced_usd
    return Reconciliation(
        provider,
        since.isoformat(),
        until.isoformat(),
        billed_usd,
        traced_usd,
        gap,
        gap / billed_usd if gap is not None and billed_usd else None,
        ordered,
    )


def _within(billed: float, traced: float, floor: float) -> bool:
    return abs(billed - traced) <= max(floor, TOLERANCE * abs(billed))


def _judge(row: Row) -> None:
    """The gap, whether it is a match, and the likely reasons when it is not."""
    if row.billed_usd is not None:
        row.gap_usd = row.billed_usd - row.traced_usd
        row.gap_pct = row.gap_usd / row.billed_usd if row.billed_usd else None
        row.matches = _within(row.billed_usd, row.traced_usd, 1e-6)
    else:
        billed_tokens = (row.billed_input_tokens or 0) + (row.billed_output_tokens or 0)
        traced_tokens = row.traced_input_tokens + row.traced_output_tokens
        row.matches = _within(billed_tokens, traced_tokens, 0) and (
            row.billed_requests is None or row.billed_requests == row.traced_requests
        )
    if row.matches:
        return
    said = row.reasons
    billed_anything = bool(row.billed_usd) or bool(row.billed_input_tokens) or bool(row.billed_requests)
    if row.model == _NOT_A_MODEL:
        said.append(
            f"not an LLM call tokentrace prices ({', '.join(row.billed_items)}): tools, storage, "
            "fine-tuning and the like are billed apart"
        )
        return
    if billed_anything and not row.traced_requests:
        said.append(
            "billed but never traced: calls from a service that is not instrumented, or sent "
            "with another project's key (or another organization's)"
        )
        return
    if not billed_anything:
        said.append(
            "traced but not on this bill: another organization's or project's key, or a day the "
            "export leaves out"
        )
        return
    if row.unpriced_calls:
        said.append(
            f"{row.unpriced_calls:,} traced calls have no price: add {row.model} to the prices file, "
            "then `tokentrace reprice`"
        )
    if row.billed_requests is not None and row.billed_requests > row.traced_requests:
        lost = row.billed_requests - row.traced_requests
        said.append(
            f"{lost:,} billed calls were not traced ({lost / row.billed_requests:.0%}): spans lost before "
            "ingest (an exporter dropping batches), or a service that is not instrumented"
        )
    elif row.billed_usd is None and (row.billed_input_tokens or 0) > row.traced_input_tokens:
        said.append("more input tokens billed than traced: calls not traced, or usage their spans lacked")
    if row.billed_tiers:
        tiers = ", ".join(sorted(row.billed_tiers))
        said.append(
            f"billed partly at the {tiers} tier: calls whose spans do not say their tier are priced "
            "at the default rates"
        )
    if row.billed_usd is not None and row.traced_usd > row.billed_usd and not row.unpriced_calls:
        said.append(
            "traced above billed: a negotiated discount or credits (set `multiplier` in the prices "
            "file), or calls billed to another organization"
        )
    if not said:
        said.append(
            "traced below billed with every call priced: prices that changed, or usage the spans "
            "did not carry"
        )
