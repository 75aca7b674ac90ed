"""The gateway's budget API: `GET /tokentrace/budgets` (budgets and their use in the current
window) and `PUT /tokentrace/budgets` (replace them; needs the admin key). With Redis the budgets
set here are shared: every gateway on that Redis follows them within a second."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import replace
from typing import Any

import orjson

from tokentrace.budgets import BudgetError, parse_budgets
from tokentrace.budgets.policy import NANO, Budget, counter_key, window_at
from tokentrace.proxy.asgi import Receive, Send, read_body, respond_json
from tokentrace.proxy.headers import client_key
from tokentrace.proxy.state import GatewayState

log = logging.getLogger("tokentrace.proxy")
PATH = "/tokentrace/budgets"


def _entry(budget: Budget) -> dict[str, Any]:
    """A budget as the API and the budgets file write it."""
    entry: dict[str, Any] = {budget.scope: budget.value, budget.limit: budget.amount, "action": budget.action}
    if budget.downgrade_to:
        entry["downgrade_to"] = budget.downgrade_to
    entry["name"] = budget.name
    return entry


async def status(state: GatewayState) -> list[dict[str, Any]]:
    """Each budget with its window and, for a budget on one value, what that window has used."""
    now = time.time()
    rows, keys = [], []
    for budget in state.policy.budgets:
        window = window_at(budget.window, now)
        row = {
            "name": budget.name,
            "scope": budget.scope,
            "value": budget.value if budget.scope != "api_key" else None,
            "limit": budget.limit,
            "amount": budget.amount,
            "action": budget.action,
            "downgrade_to": budget.downgrade_to,
            "window": window.label,
            "resets_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(window.ends_at)),
            "used": None,  # a "*" budget counts each value apart: no one total
        }
        rows.append(row)
        keys.append(counter_key(budget, budget.value, window) if budget.value != "*" else None)
    wanted = [k for k in keys if k]
    values = iter(await state.counters.read(wanted))
    for row, key, budget in zip(rows, keys, state.policy.budgets, strict=True):
        if key:
            used = next(values)
            row["used"] = used / NANO if budget.in_usd else used
    return rows


async def handle(state: GatewayState, scope: dict[str, Any], receive: Receive, send: Send) -> None:
    method = scope["method"]
    if method == "GET":
        await respond_json(send, 200, {"budgets": await status(state)})
        return
    if method != "PUT":
        await respond_json(send, 405, {"error": "use GET or PUT"})
        return
    admin = state.config.admin_key
    if not admin:
        await respond_json(
            send, 403, {"error": "start the gateway with --admin-key to change budgets over the API"}
        )
        return
    if not hmac.compare_digest((client_key(scope["headers"]) or "").encode(), admin.encode()):
        await respond_json(send, 401, {"error": "the admin key is needed (Authorization: Bearer …)"})
        return
    raw = await read_body(receive, 1024 * 1024)
    try:
        data = orjson.loads(raw)
        entries = data.get("budgets") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise BudgetError('send {"budgets": [ ... ]}, the budgets file\'s entries as JSON')
        budgets = parse_budgets(entries, "request")
    except (orjson.JSONDecodeError, BudgetError) as exc:
        message = str(exc) if isinstance(exc, BudgetError) else "the body is not valid JSON"
        await respond_json(send, 400, {"error": message})
        return
    state.policy = replace(state.policy, budgets=budgets)
    await state.counters.share_policy(orjson.dumps([_entry(b) for b in budgets]))
    log.info("budgets replaced over the API: %d budgets", len(budgets))
    await respond_json(send, 200, {"budgets": await status(state)})


async def follow_shared(state: GatewayState, interval_s: float = 1.0) -> None:
    """Apply budgets another gateway set over its API (shared through Redis), until cancelled."""
    seen: bytes | None = None
    while True:
        try:
            text = await state.counters.shared_policy()
            if text is not None and text != seen:
                seen = text
                state.policy = replace(state.policy, budgets=parse_budgets(orjson.loads(text), "redis"))
        except (BudgetError, orjson.JSONDecodeError) as exc:
            log.error("the budgets shared in Redis cannot be used (%s); keeping the current ones", exc)
        except Exception as exc:  # Redis away for a moment: try again next round
            log.warning("reading the shared budgets failed: %s", exc)
        await asyncio.sleep(interval_s)
