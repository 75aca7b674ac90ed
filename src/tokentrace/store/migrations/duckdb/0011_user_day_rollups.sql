-- Daily per-user rollups by the user hours' keys (canonical.USER_DAY), summed from the user-hour
-- rows: cost per user over a month reads 30 days of rows instead of 720 hours, and the hours at
-- its edges from rollup_user_hour. The store fills it from rollup_user_hour on its first advance.
CREATE TABLE rollup_user_day (
    project_id VARCHAR NOT NULL,
    day TIMESTAMP NOT NULL,
    tenant_id VARCHAR,
    user_id VARCHAR,
    status VARCHAR,
    error_type VARCHAR,
    requests BIGINT NOT NULL,
    spans BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    total_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost_usd DOUBLE NOT NULL,
    unpriced_spans BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    http_resends BIGINT NOT NULL,
    retry_tokens BIGINT NOT NULL,
    retry_cost_usd DOUBLE NOT NULL,
    truncated BIGINT NOT NULL,
    streamed BIGINT NOT NULL,
    first_seen TIMESTAMP_NS NOT NULL,
    last_seen TIMESTAMP_NS NOT NULL,
    sampled_out BOOLEAN NOT NULL DEFAULT false
);
