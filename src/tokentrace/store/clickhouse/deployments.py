"""Self-hosted deployments' calls on ClickHouse: each hour's usage across projects, and the
calls of an hour, for the amortize job and the deployment report (query/deployments.py)."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from tokentrace import semconv
from tokentrace.store.clickhouse.connection import SPANS
from tokentrace.store.clickhouse.dialect import time64
from tokentrace.store.clickhouse.rollups import COMMITTED, SETTINGS

_WHERE = (
    "deployment = {name:String} AND start_time >= {lo:DateTime64(9, 'UTC')} "
    # a trace a committed sweep dropped is on its way out: its calls are sampled_calls now
    f"AND start_time < {{hi:DateTime64(9, 'UTC')}} AND trace_id NOT IN ({COMMITTED})"
)

_USAGE = f"""
WITH calls AS (
    SELECT toInt64(toUnixTimestamp(toStartOfHour(start_time))) AS hour,
           toInt64(toUnixTimestamp(toStartOfMinute(start_time))) AS minute,
           coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens,
           duplicate_of IS NULL AS counted, cost_usd,
           JSONExtractString(attributes, '{semconv.PRICE_AMORTIZED}') AS settled
    FROM {SPANS} WHERE {_WHERE}
), busiest AS (
    SELECT hour, max(minute_tokens) AS busiest_minute_tokens FROM (
        SELECT hour, minute, sum(tokens) AS minute_tokens FROM calls WHERE counted GROUP BY hour, minute
    ) GROUP BY hour
)
SELECT c.hour AS hour,
       toInt64(countIf(c.counted)) AS calls,
       toInt64(sumIf(c.tokens, c.counted)) AS tokens,
       toFloat64(sumIf(coalesce(c.cost_usd, 0), c.counted)) AS cost_usd,
       toInt64(countIf(c.settled != 'final')) AS unsettled,
       toInt64(countIf(c.cost_usd IS NULL)) AS pending,
       toInt64(coalesce(any(b.busiest_minute_tokens), 0)) AS busiest_minute_tokens
FROM calls AS c LEFT JOIN busiest AS b ON b.hour = c.hour
GROUP BY c.hour ORDER BY c.hour
{SETTINGS}"""

_CALLS = f"""
SELECT project_id, trace_id, span_id,
       toInt64(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens,
       duplicate_of IS NULL AS counted, cost_usd, attributes
FROM {SPANS} WHERE {_WHERE}
ORDER BY project_id, trace_id, span_id
{SETTINGS}"""


class ClickHouseDeployments:
    """Deployments over the spans table (FINAL: the newest revision of each span)."""

    def deployment_usage(self, name: str, since: datetime, until: datetime) -> pa.Table:
        return self._ch.query(_USAGE, self._range(name, since, until))

    def deployment_calls(self, name: str, since: datetime, until: datetime) -> pa.Table:
        return self._ch.query(_CALLS, self._range(name, since, until))

    @staticmethod
    def _range(name: str, since: datetime, until: datetime) -> dict[str, str]:
        return {"name": name, "lo": time64(since), "hi": time64(until)}
