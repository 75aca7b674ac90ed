"""Re-price stored spans with the current price book (after a price fix or new override)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from tokentrace import semconv
from tokentrace.canonical import COST_UPDATE_SCHEMA, MODALITY_TOKEN_FIELDS
from tokentrace.jobs.amortize import settle
from tokentrace.pricing.book import PriceBook
from tokentrace.pricing.deployments import PENDING, Deployment
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

_COLUMNS = (
    "trace_id",
    "span_id",
    "provider",
    "request_model",
    "response_model",
    "start_time",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "service_tier",
    *MODALITY_TOKEN_FIELDS,
    "cost_usd",
    "cost_known",
    "deployment",
    "attributes",
)


@dataclass(frozen=True)
class RepriceReport:
    spans_checked: int
    spans_changed: int
    cost_before_usd: float
    cost_after_usd: float
    newly_priced: int
    newly_unpriced: int

    @property
    def difference_usd(self) -> float:
        return self.cost_after_usd - self.cost_before_usd


def reprice(store: Store, book: PriceBook, f: SpanFilter, now: datetime | None = None) -> RepriceReport:
    """Recompute cost of every priced-or-unpriced span in `f`; write back those that changed.
    Calls a self-hosted deployment served get their share of their hour again (jobs/amortize.py),
    as it stands `now`."""
    table = store.spans(f, _COLUMNS)
    cols = {name: table.column(name).to_pylist() for name in _COLUMNS if name != "start_time"}
    starts = table.column("start_time").cast(pa.int64()).to_pylist()
    models = [r or q for r, q in zip(cols["response_model"], cols["request_model"], strict=True)]
    costs, known, used = book.price_columns(
        cols["provider"],
        models,
        starts,
        cols["input_tokens"],
        cols["output_tokens"],
        cols["cache_read_tokens"],
        cols["cache_write_tokens"],
        cols["service_tier"],
        list(zip(*(cols[field] for field in MODALITY_TOKEN_FIELDS), strict=True)),
    )
    served = _deployments(book, cols, models, starts, known)
    changed: dict[str, list] = {name: [] for name in COST_UPDATE_SCHEMA.names}
    before = after = 0.0
    newly_priced = newly_unpriced = 0
    for i, (cost, is_known, rates) in enumerate(zip(costs, known, used, strict=True)):
        old_cost, old_known = cols["cost_usd"][i], cols["cost_known"][i]
        before += old_cost or 0.0
        deployment = served[i]
        if deployment is not None:
            if (
                cols["deployment"][i] == deployment.name
                and _source(cols["attributes"][i]) == deployment.source
            ):
                after += old_cost or 0.0
                continue  # the same deployment at the same price: its share stands
            cost, is_known = None, True
        elif cost == old_cost and is_known == old_known and cols["deployment"][i] is None:
            after += cost or 0.0
            continue
        after += cost or 0.0
        newly_priced += bool(is_known and not old_known)
        newly_unpriced += bool(old_known and not is_known)
        attrs = orjson.loads(cols["attributes"][i] or "{}")
        for key in semconv.PRICE_PROVENANCE:
            attrs.pop(key, None)
        if deployment is not None:
            attrs.update(deployment.provenance(PENDING))
        elif rates is not None:
            attrs.update(rates.provenance())
        changed["trace_id"].append(cols["trace_id"][i])
        changed["span_id"].append(cols["span_id"][i])
        changed["cost_usd"].append(cost)
        changed["cost_known"].append(is_known)
        changed["deployment"].append(deployment.name if deployment is not None else None)
        changed["attributes"].append(orjson.dumps(attrs).decode())
    count = 0
    if changed["span_id"]:
        count = store.update_costs(f.project_id, pa.table(changed, schema=COST_UPDATE_SCHEMA))
    if any(d is not None for d in served) and starts:
        # the shares of the hours these calls fall in, split again now (across projects)
        settle(store, book.overrides.deployments, now or datetime.now(UTC), since=_instant(min(starts)))
        after = sum(c or 0.0 for c in store.spans(f, ("cost_usd",)).column("cost_usd").to_pylist())
    return RepriceReport(len(starts), count, before, after, newly_priced, newly_unpriced)


def _deployments(
    book: PriceBook,
    cols: dict[str, list],
    models: list[str | None],
    starts: list[int],
    known: list[bool | None],
) -> list[Deployment | None]:
    """The deployment that served each span (None: priced per token, or not a call)."""
    if not book.overrides.deployments:
        return [None] * len(starts)
    find = book.overrides.deployment
    served: list[Deployment | None] = []
    for i, model in enumerate(models):
        if known[i] is None or not model:
            served.append(None)
            continue
        address = orjson.loads(cols["attributes"][i] or "{}").get(semconv.SERVER_ADDRESS)
        served.append(find(cols["provider"][i] or "", model, address, starts[i]))
    return served


def _source(attributes: str | None) -> str | None:
    return orjson.loads(attributes or "{}").get(semconv.PRICE_SOURCE)


def _instant(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)
