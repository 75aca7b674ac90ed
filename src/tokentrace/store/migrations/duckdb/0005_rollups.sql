-- Per-minute rollups of every counted span (duplicates excluded), by the rollup keys
-- (canonical.ROLLUP_KEYS), with latency sketches (tokentrace/sketch.py: bucket -> count).
-- rollup_state.complete_until: every minute before it is rolled up; later ones are read from spans.
CREATE TABLE rollup_minute (
    project_id VARCHAR NOT NULL,
    minute TIMESTAMP NOT NULL,
    service_name VARCHAR,
    environment VARCHAR,
    provider VARCHAR,
    request_model VARCHAR,
    response_model VARCHAR,
    operation VARCHAR,
    tenant_id VARCHAR,
    feature VARCHAR,
    prompt_template VARCHAR,
    prompt_version VARCHAR,
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
    duration_ms MAP(SMALLINT, UBIGINT),
    ttft_ms MAP(SMALLINT, UBIGINT),
    tpot_ms MAP(SMALLINT, UBIGINT)
);
CREATE TABLE rollup_state (
    id INTEGER PRIMARY KEY,
    complete_until TIMESTAMP NOT NULL
);
