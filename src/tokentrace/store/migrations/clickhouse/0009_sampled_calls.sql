-- What tail sampling keeps of each counted LLM call of a trace it drops, as the trace's spans
-- and content are deleted (canonical.SAMPLED_CALL_FIELDS): triage reads these with the stored
-- calls, so it finds the same causes on a sampled store. Retention deletes them by start_time.
-- A sweep writes its calls under its id before it commits; they count once it has (VALID), and
-- from then until its spans are deleted the spans of its traces do not (sampling.py).
CREATE TABLE IF NOT EXISTS sampled_calls (
    project_id LowCardinality(String),
    trace_id String,
    start_time DateTime64(9, 'UTC'),
    duration_ms Nullable(Float64),
    input_tokens Nullable(Int64),
    output_tokens Nullable(Int64),
    total_tokens Nullable(Int64),
    cache_read_tokens Nullable(Int64),
    cache_write_tokens Nullable(Int64),
    reasoning_tokens Nullable(Int64),
    cost_usd Nullable(Float64),
    agent_name Nullable(String),
    data_source Nullable(String),
    environment LowCardinality(Nullable(String)),
    error_type LowCardinality(Nullable(String)),
    feature LowCardinality(Nullable(String)),
    finish_reason LowCardinality(Nullable(String)),
    kind LowCardinality(Nullable(String)),
    name Nullable(String),
    operation LowCardinality(Nullable(String)),
    prompt_template LowCardinality(Nullable(String)),
    prompt_version LowCardinality(Nullable(String)),
    provider LowCardinality(Nullable(String)),
    request_model LowCardinality(Nullable(String)),
    response_model LowCardinality(Nullable(String)),
    service_name LowCardinality(Nullable(String)),
    service_tier LowCardinality(Nullable(String)),
    service_version LowCardinality(Nullable(String)),
    session_id Nullable(String),
    status LowCardinality(Nullable(String)),
    streaming Nullable(Bool),
    tenant_id LowCardinality(Nullable(String)),
    tool_name Nullable(String),
    user_id Nullable(String),
    sweep UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (project_id, toStartOfHour(start_time), trace_id);
