-- The ClickHouse store's schema (store/clickhouse/), the DuckDB schema's counterpart.
-- One statement per `;` at a line's end (ClickHouse runs one statement per query).
--
-- Canonical spans. A row's identity is (project_id, trace_id, span_id): a span delivered twice
-- is inserted once (the writer skips identities present), and a later revision of a span
-- (inherited tags, a duplicate mark, a new price) is a new row with a higher `revision`, which
-- ReplacingMergeTree keeps alone on merge; reads take FINAL. Months partition, hours sort:
-- a range scan reads its hours, and the start time is part of the identity's sort key.
CREATE TABLE IF NOT EXISTS spans (
    project_id LowCardinality(String),
    trace_id String,
    span_id String,
    parent_span_id String,
    name Nullable(String),
    kind LowCardinality(Nullable(String)),
    operation LowCardinality(Nullable(String)),
    start_time DateTime64(9, 'UTC'),
    end_time DateTime64(9, 'UTC'),
    duration_ms Nullable(Float64),
    status LowCardinality(Nullable(String)),
    status_message Nullable(String),
    error_type LowCardinality(Nullable(String)),
    service_name LowCardinality(Nullable(String)),
    service_version LowCardinality(Nullable(String)),
    environment LowCardinality(Nullable(String)),
    provider LowCardinality(Nullable(String)),
    request_model LowCardinality(Nullable(String)),
    response_model LowCardinality(Nullable(String)),
    input_tokens Nullable(Int64),
    output_tokens Nullable(Int64),
    total_tokens Nullable(Int64),
    cache_read_tokens Nullable(Int64),
    cache_write_tokens Nullable(Int64),
    reasoning_tokens Nullable(Int64),
    cost_usd Nullable(Float64),
    cost_known Nullable(Bool),
    finish_reason LowCardinality(Nullable(String)),
    temperature Nullable(Float64),
    max_tokens Nullable(Int64),
    top_p Nullable(Float64),
    seed Nullable(Int64),
    streaming Nullable(Bool),
    ttft_ms Nullable(Float64),
    tpot_ms Nullable(Float64),
    user_id Nullable(String),
    session_id Nullable(String),
    tenant_id LowCardinality(Nullable(String)),
    feature LowCardinality(Nullable(String)),
    prompt_template LowCardinality(Nullable(String)),
    prompt_version LowCardinality(Nullable(String)),
    request_id Nullable(String),
    response_id Nullable(String),
    retry_attempt Nullable(Int64),
    duplicate_of Nullable(String),
    tool_name Nullable(String),
    agent_name Nullable(String),
    data_source Nullable(String),
    attributes String,
    resource String,
    revision UInt64,
    INDEX trace_bloom trace_id TYPE bloom_filter(0.01) GRANULARITY 4
) ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(start_time)
ORDER BY (project_id, toStartOfHour(start_time), trace_id, span_id);

-- Message content lives apart so analytics scans never read it. A span's content may come in
-- parts (with the span, and as OTLP log records before or after it): DuckDB merges them at
-- write; ClickHouse keeps every part and merges at read by the same rules (the first complete
-- message list, events accumulated without repeats).
CREATE TABLE IF NOT EXISTS content_parts (
    project_id LowCardinality(String),
    trace_id String,
    span_id String,
    start_time DateTime64(9, 'UTC'),
    system_instructions Nullable(String),
    input_messages Nullable(String),
    output_messages Nullable(String),
    events Nullable(String),
    revision UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (project_id, trace_id, span_id);

CREATE TABLE IF NOT EXISTS scores (
    project_id LowCardinality(String),
    score_id String,
    trace_id String,
    span_id String,
    name LowCardinality(String),
    data_type LowCardinality(String),
    value Nullable(Float64),
    string_value Nullable(String),
    comment Nullable(String),
    source LowCardinality(String),
    created_at DateTime64(9, 'UTC')
) ENGINE = ReplacingMergeTree(created_at)
ORDER BY (project_id, score_id);

CREATE TABLE IF NOT EXISTS projects (
    project_id String,
    created_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY project_id;

-- API keys are stored as SHA-256 hashes only.
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash String,
    project_id String,
    created_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY key_hash;

-- Per-minute rollups by canonical.ROLLUP_KEYS with latency sketches (tokentrace/sketch.py),
-- and hourly per-user rollups by canonical.USER_ROLLUP_KEYS. Without transactions a bucket is
-- never deleted and rewritten: computing it again inserts its rows with a higher `version`,
-- and reads take each bucket's (for user hours: each user's) newest version, so a crash between
-- two statements leaves the old rows in force, never none and never both. Rows of sampled-out
-- spans are marked and always count.
CREATE TABLE IF NOT EXISTS rollup_minute (
    project_id LowCardinality(String),
    minute DateTime('UTC'),
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
    version UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (project_id, minute);

CREATE TABLE IF NOT EXISTS rollup_user_hour (
    project_id LowCardinality(String),
    hour DateTime('UTC'),
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
    version UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, hour);

-- Each rollup table's mark: every bucket before it is rolled up.
CREATE TABLE IF NOT EXISTS rollup_marks (
    grain String,
    complete_until DateTime('UTC'),
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY grain;

INSERT INTO projects SELECT 'default', now64(6) WHERE 'default' NOT IN (SELECT project_id FROM projects);
