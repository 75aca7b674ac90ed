"""Tell the budgets file's webhooks, once per budget and window, that a budget acted."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import aiohttp

from tokentrace.budgets.decisions import Decision, Line
from tokentrace.budgets.policy import NANO

log = logging.getLogger("tokentrace.budgets")


def payload(line: Line, used: int, action: str) -> dict[str, object]:
    """What a webhook receives; `text` makes it readable as a Slack incoming-webhook message."""
    budget = line.budget
    return {
        "kind": "budget",
        "action": action,
        "budget": budget.name,
        "scope": budget.scope,
        "value": line.value if budget.scope != "api_key" else None,
        "limit": budget.amount,
        "unit": "usd" if budget.in_usd else "tokens",
        "used": used / NANO if budget.in_usd else used,
        "window": line.key.rsplit(":", 1)[-1],
        "text": f"tokentrace: {budget.describe(used)} ({action})",
    }


class BudgetAlerts:
    """Posts to each webhook the first time, per counter window, that a budget warns, blocks or
    downgrades. Each gateway remembers what it sent, so with several gateways each may send once."""

    def __init__(self, webhooks: Sequence[str], client: aiohttp.ClientSession | None = None) -> None:
        self.webhooks = tuple(webhooks)
        self.client = client
        self._sent: set[str] = set()

    def due(self, decision: Decision) -> list[dict[str, object]]:
        """The alerts this decision triggers that were not sent yet (marked sent)."""
        if not self.webhooks:
            return []
        found = []
        for line, used in decision.crossed:
            if line.key in self._sent:
                continue
            self._sent.add(line.key)
            action = line.budget.action if decision.allowed else "block"
            found.append(payload(line, used, action))
        return found

    async def send(self, alerts: list[dict[str, object]]) -> None:
        """Post on the gateway's event loop (the SDK posts from a thread of its own)."""
        assert self.client is not None
        for alert in alerts:
            for url in self.webhooks:
                try:
                    timeout = aiohttp.ClientTimeout(total=10)
                    async with self.client.post(url, json=alert, timeout=timeout) as response:
                        response.raise_for_status()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("budget alert to %s failed: %s", url, exc)
