"""Re-price stored spans with the current price book (after a price fix or new override)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pyarrow as pa

from tokentrace import semconv
from tokentrace.canonical import MODALITY_TOKEN_FIELDS
from tokentrace.pricing.book import PriceBook
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


def reprice(store: Store, book: PriceBook, f: SpanFilter) -> RepriceReport:
    """Recompute cost of every priced-or-unpriced span in `f`; write back those that changed."""
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
    changed = {"trace_id": [], "span_id": [], "cost_usd": [], "cost_known": [], "attributes": []}
    before = after = 0.0
    newly_priced = newly_unpriced = 0
    for i, (cost, is_known, rates) in enumerate(zip(costs, known, used, strict=True)):
        old_cost, old_known = cols["cost_usd"][i], cols["cost_known"][i]
        before += old_cost or 0.0
        after += cost or 0.0
        if cost == old_cost and is_known == old_known:
            continue
        newly_priced += bool(is_known and not old_known)
        newly_unpriced += bool(old_known and not is_known)
        attrs = orjson.loads(cols["attributes"][i] or "{}")
        for key in semconv.PRICE_PROVENANCE:
            attrs.pop(key, None)
        if rates is not None:
            attrs.update(rates.provenance())
        changed["trace_id"].append(cols["trace_id"][i])
        changed["span_id"].append(cols["span_id"][i])
        changed["cost_usd"].append(cost)
        changed["cost_known"].append(is_known)
        changed["attributes"].append(orjson.dumps(attrs).decode())
    count = 0
    if changed["span_id"]:
        count = store.update_costs(
            f.project_id,
            pa.table(
                changed,
                schema=pa.schema(
                    [
                        ("trace_id", pa.string()),
                        ("span_id", pa.string()),
                        ("cost_usd", pa.float64()),
                        ("cost_known", pa.bool_()),
                        ("attributes", pa.string()),
                    ]
                ),
            ),
        )
    return RepriceReport(len(starts), count, before, after, newly_priced, newly_unpriced)
