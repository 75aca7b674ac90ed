-- Hourly per-user rollups of every counted span (duplicates excluded), by
-- canonical.USER_ROLLUP_KEYS: at most one row per project, hour, user and outcome seen.
CREATE TABLE rollup_user_hour (
    project_id VARCHAR NOT NULL,
    hour TIMESTAMP NOT NULL,
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
    last_seen TIMESTAMP_NS NOT NULL
);
-- One mark per rollup table: every bucket that ends at or before it is rolled up. The user
-- hours' mark starts unset, so the first advance rolls them up from the oldest span.
CREATE TABLE rollup_marks (
    grain VARCHAR PRIMARY KEY,
    complete_until TIMESTAMP NOT NULL
);
INSERT INTO rollup_marks SELECT 'rollup_minute', complete_until FROM rollup_state WHERE id = 1;
DROP TABLE rollup_state;
