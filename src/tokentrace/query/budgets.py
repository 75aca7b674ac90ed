"""Budgets against what the traces show: each budget's spend in its current window, its share of
the limit, and the calls budgets refused (error type `budget`).

These are the stored spans' numbers. The gateway's own counters (`GET /tokentrace/budgets`) also
hold the reservations of calls still in flight and act on them; the two agree once calls end and
their spans arrive. A budget on API keys cannot be followed here: spans never carry the key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tokentrace.budgets.policy import Budget, Policy, Window, window_at
from tokentrace.query.aggregates import rollup
from tokentrace.store.filters import SpanFilter
from tokentrace.store.protocol import Store

#: Values shown per "*" budget, nearest their limit first.
TOP_VALUES = 10


@dataclass(slots=True)
class ValueUse:
    """One value's use of a budget in its window: spend (USD or tokens, as the budget counts),
    its share of the limit, its LLM calls and how many of them the budget refused."""

    value: str | None
    used: float
    share: float
    refused: int
    calls: int


@dataclass(slots=True, kw_only=True)
class BudgetUse:
    """A budget, its current window and its use. A budget on one value has `used`, `share`,
    `refused` and `calls`; a "*" budget has its `value_count` values and the nearest their limit
    in `by_value`; a budget on API keys (`traced` false) has neither: spans never carry the key."""

    name: str
    scope: str
    value: str | None
    limit: str
    amount: float
    unit: str
    action: str
    downgrade_to: str | None
    limit_text: str
    window: str
    window_start: str
    resets_at: str
    traced: bool
    used: float | None = None
    share: float | None = None
    refused: int | None = None
    calls: int | None = None
    by_value: list[ValueUse] | None = None
    value_count: int | None = None


def _use(budget: Budget, value: str | None, row: dict[str, Any] | None) -> ValueUse:
    if row is None:
        return ValueUse(value, 0, 0.0, 0, 0)
    used = row["cost_usd"] if budget.in_usd else row["total_tokens"]
    return ValueUse(
        value, used, used / budget.amount, row["errors_by_type"].get("budget", 0), row["requests"]
    )


def budget_usage(store: Store, project_id: str, policy: Policy, now: float | None = None) -> list[BudgetUse]:
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
        item = BudgetUse(
            name=budget.name,
            scope=budget.scope,
            value=budget.value if budget.scope != "api_key" else None,
            limit=budget.limit,
            amount=budget.amount,
            unit="usd" if budget.in_usd else "tokens",
            action=budget.action,
            downgrade_to=budget.downgrade_to,
            limit_text=budget.limit_text,
            # A minute's counter is named by its epoch second; people read the minute.
            window=window.label if budget.window != "minute" else _iso(window.starts_at)[:16] + "Z",
            window_start=_iso(window.starts_at),
            resets_at=_iso(window.ends_at),
            traced=budget.scope != "api_key",
        )
        if budget.scope == "api_key":
            pass  # spans never carry the key: nothing to show
        elif budget.value == "*":
            rows = rows_by_value(budget.scope, window)
            values = [_use(budget, value, row) for value, row in rows.items() if value is not None]
            values.sort(key=lambda use: (-use.share, -use.refused, use.value))
            item.by_value = values[:TOP_VALUES]
            item.value_count = len(values)
        else:
            use = _use(budget, budget.value, rows_by_value(budget.scope, window).get(budget.value))
            item.used, item.share, item.refused, item.calls = use.used, use.share, use.refused, use.calls
        out.append(item)
    return out


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
