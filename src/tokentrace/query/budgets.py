"""Budgets against what the traces show: each budget's spend in its current window, its share of
the limit, and the calls budgets refused (error type `budget`).

These are the stored spans' numbers. The gateway's own counters (`GET /tokentrace/budgets`) also
hold the reservations of calls still in flight and act on them; the two agree once calls end and
their spans arrive. A budget on API keys cannot be followed here: spans never carry the key.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tokentrace.budgets.policy import Budget, Policy, Window, window_at
from tokentrace.query.aggregates import rollup
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: Values shown per "*" budget, nearest their limit first.
TOP_VALUES = 10


def _used(budget: Budget, row: dict[str, Any]) -> float:
    return row["cost_usd"] if budget.in_usd else row["total_tokens"]


def _entry(budget: Budget, value: str | None, row: dict[str, Any] | None) -> dict[str, Any]:
    used = _used(budget, row) if row else 0
    return {
        "value": value,
        "used": used,
        "share": used / budget.amount,
        "refused": row["errors_by_type"].get("budget", 0) if row else 0,
        "calls": row["requests"] if row else 0,
    }


def budget_usage(
    store: Store, project_id: str, policy: Policy, now: float | None = None
) -> list[dict[str, Any]]:
    """Each budget with its window and use. A budget on one value has `used`, `share` (of the
    limit) and `refused`; a "*" budget lists its values nearest their limit in `by_value`."""
    now = time.time() if now is None else now
    cache: dict[tuple[str, str], dict[str | None, dict[str, Any]]] = {}

    def rows_by_value(scope: str, window: Window) -> dict[str | None, dict[str, Any]]:
        # One query per scope and window, shared by the budgets that use both.
        key = (scope, window.label)
        if key not in cache:
            since = datetime.fromtimestamp(window.starts_at, UTC)
            rows = rollup(store, SpanFilter(project_id, since=since), (scope,), distinct=False)
            cache[key] = {row[scope]: row for row in rows}
        return cache[key]

    out = []
    for budget in policy.budgets:
        window = window_at(budget.window, now)
        item: dict[str, Any] = {
            "name": budget.name,
            "scope": budget.scope,
            "value": budget.value if budget.scope != "api_key" else None,
            "limit": budget.limit,
            "amount": budget.amount,
            "unit": "usd" if budget.in_usd else "tokens",
            "action": budget.action,
            "downgrade_to": budget.downgrade_to,
            "limit_text": budget.limit_text,
            # A minute's counter is named by its epoch second; people read the minute.
            "window": window.label if budget.window != "minute" else _iso(window.starts_at)[:16] + "Z",
            "window_start": _iso(window.starts_at),
            "resets_at": _iso(window.ends_at),
            "traced": budget.scope != "api_key",
        }
        if budget.scope == "api_key":
            pass  # spans never carry the key: nothing to show
        elif budget.value == "*":
            rows = rows_by_value(budget.scope, window)
            values = [_entry(budget, value, row) for value, row in rows.items() if value is not None]
            values.sort(key=lambda entry: (-entry["share"], -entry["refused"], entry["value"]))
            item["by_value"] = values[:TOP_VALUES]
            item["value_count"] = len(values)
        else:
            item |= _entry(budget, budget.value, rows_by_value(budget.scope, window).get(budget.value))
        out.append(item)
    return out


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
