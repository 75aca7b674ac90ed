"""Self-hosted deployments' calls on DuckDB: each hour's usage across projects, and the calls of
an hour, for the amortize job and the deployment report (query/deployments.py)."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from tokentrace import semconv
from tokentrace.store.duckdb.connection import naive

_SETTLED = f"json_extract_string(attributes, '$.\"{semconv.PRICE_AMORTIZED}\"')"

_USAGE = f"""
WITH calls AS (
    SELECT epoch(time_bucket(INTERVAL 1 HOUR, start_time::TIMESTAMP))::BIGINT AS hour,
           epoch(date_trunc('minute', start_time::TIMESTAMP))::BIGINT AS minute,
           coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens,
           duplicate_of IS NULL AS counted, cost_usd, {_SETTLED} AS settled
    FROM spans WHERE deployment = ? AND start_time >= ? AND start_time < ?
), busiest AS (
    SELECT hour, max(tokens) AS busiest_minute_tokens FROM (
        SELECT hour, minute, sum(tokens) AS tokens FROM calls WHERE counted GROUP BY hour, minute
    ) GROUP BY hour
)
SELECT hour,
       count(*) FILTER (WHERE counted) AS calls,
       coalesce(sum(tokens) FILTER (WHERE counted), 0)::BIGINT AS tokens,
       coalesce(sum(cost_usd) FILTER (WHERE counted), 0)::DOUBLE AS cost_usd,
       count(*) FILTER (WHERE settled IS DISTINCT FROM 'final') AS unsettled,
       count(*) FILTER (WHERE cost_usd IS NULL) AS pending,
       coalesce(any_value(b.busiest_minute_tokens), 0)::BIGINT AS busiest_minute_tokens
FROM calls LEFT JOIN busiest b USING (hour)
GROUP BY hour ORDER BY hour
"""

_CALLS = """
SELECT project_id, trace_id, span_id,
       coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens,
       duplicate_of IS NULL AS counted, cost_usd, attributes
FROM spans WHERE deployment = ? AND start_time >= ? AND start_time < ?
ORDER BY project_id, trace_id, span_id
"""


class DuckDBDeployments:
    """Deployments over the spans table."""

    def deployment_usage(self, name: str, since: datetime, until: datetime) -> pa.Table:
        return self._arrow(_USAGE, [name, naive(since), naive(until)])

    def deployment_calls(self, name: str, since: datetime, until: datetime) -> pa.Table:
        return self._arrow(_CALLS, [name, naive(since), naive(until)])
