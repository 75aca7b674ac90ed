-- Daily per-user rollups by the user hours' keys (canonical.USER_DAY): cost per user over a
-- month reads 30 days of rows instead of 720 hours, and the hours at its edges from
-- rollup_user_hour. The store sums them from the user hours as it goes, and on its first
-- advance every user hour so far (store/clickhouse/rollups.py).
CREATE TABLE IF NOT EXISTS rollup_user_day (
    project_id LowCardinality(String),
    day DateTime('UTC'),
    tenant_id LowCardinality(Nullable(String)),
    user_id Nullable(String),
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
    sampled_out Bool DEFAULT false,
    version UInt64,
    sweep UInt64 DEFAULT 0
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day);
