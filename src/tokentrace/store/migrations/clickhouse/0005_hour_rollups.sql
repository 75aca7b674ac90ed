-- Hourly rollups by the same keys as the minute ones (canonical.HOUR): a read of a month takes
-- 720 hours instead of 43,200 minutes of rows, and the minutes at its edges from rollup_minute.
-- The store sums them from the finer rows as it goes, and on its first advance every finer
-- row so far (store/clickhouse/rollups.py).
CREATE TABLE IF NOT EXISTS rollup_hour (
    project_id LowCardinality(String),
    hour DateTime('UTC'),
    service_name LowCardinality(Nullable(String)),
    environment LowCardinality(Nullable(String)),
    provider LowCardinality(Nullable(String)),
    request_model LowCardinality(Nullable(String)),
    response_model LowCardinality(Nullable(String)),
    operation LowCardinality(Nullable(String)),
    tenant_id LowCardinality(Nullable(String)),
    feature LowCardinality(Nullable(String)),
    prompt_template LowCardinality(Nullable(String)),
    prompt_version LowCardinality(Nullable(String)),
    status LowCardinality(Nullable(String)),
    error_type LowCardinality(Nullable(String)),
    requests UInt64,
    spans UInt64,
    input_tokens Int64,
    output_tokens Int64,
    total_tokens Int64,
    cache_read_tokens Int64,
    cache_write_tokens Int64,
    reasoning_tokens Int64,
    cost_usd Float64,
    unpriced_spans UInt64,
    retries UInt64,
    http_resends UInt64,
    retry_tokens Int64,
    retry_cost_usd Float64,
    truncated UInt64,
    streamed UInt64,
    first_seen DateTime64(9, 'UTC'),
    last_seen DateTime64(9, 'UTC'),
    duration_ms Map(Int16, UInt64),
    ttft_ms Map(Int16, UInt64),
    tpot_ms Map(Int16, UInt64),
    sampled_out Bool DEFAULT false,
    version UInt64,
    sweep UInt64 DEFAULT 0
) ENGINE = MergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, hour);
