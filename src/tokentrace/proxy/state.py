"""What the gateway holds while it runs: its config, the upstream client, counters, span sink."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from tokentrace.budgets import Policy
from tokentrace.budgets.counters import AsyncCounters
from tokentrace.budgets.redis_counters import AsyncRedisCounters
from tokentrace.budgets.webhooks import BudgetAlerts
from tokentrace.pricing import PriceBook
from tokentrace.proxy.batch_book import BatchBook
from tokentrace.proxy.config import ProxyConfig
from tokentrace.proxy.spans import SpanSink


@dataclass
class GatewayState:
    config: ProxyConfig
    client: aiohttp.ClientSession
    sink: SpanSink
    counters: AsyncCounters | AsyncRedisCounters
    book: PriceBook
    alerts: BudgetAlerts
    policy: Policy  # the budgets in force: the file's, or the last ones set over the API
    batches: BatchBook = field(default_factory=BatchBook)  # batch jobs seen, for their results' spans
