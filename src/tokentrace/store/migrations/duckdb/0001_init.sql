-- JSON text columns are VARCHAR, not JSON: ingest writes only orjson output, so DuckDB's
-- validation on insert would re-parse every attribute map for nothing (~8% of write time);
-- json_extract works on VARCHAR all the same.
--
-- Canonical spans. span_key = md5_number(project_id || ':' || trace_id || span_id): one
-- fixed-width 128-bit key makes the identity check (a span delivered twice is stored
-- once) several times cheaper than a composite varchar key.
CREATE TABLE spans (
    span_key UHUGEINT PRIMARY KEY,
    project_id VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    parent_span_id VARCHAR NOT NULL,
    name VARCHAR,
    kind VARCHAR,
    operation VARCHAR,
    start_time TIMESTAMP_NS NOT NULL,
    end_time TIMESTAMP_NS NOT NULL,
    duration_ms DOUBLE,
    status VARCHAR,
    status_message VARCHAR,
    error_type VARCHAR,
    service_name VARCHAR,
    service_version VARCHAR,
    environment VARCHAR,
    provider VARCHAR,
    request_model VARCHAR,
    response_model VARCHAR,
    input_tokens BIGINT,
    output_tokens BIGINT,
    total_tokens BIGINT,
    cache_read_tokens BIGINT,
    cache_write_tokens BIGINT,
    reasoning_tokens BIGINT,
    cost_usd DOUBLE,
    cost_known BOOLEAN,
    finish_reason VARCHAR,
    temperature DOUBLE,
    max_tokens BIGINT,
    top_p DOUBLE,
    seed BIGINT,
    streaming BOOLEAN,
    ttft_ms DOUBLE,
    tpot_ms DOUBLE,
    user_id VARCHAR,
    session_id VARCHAR,
    tenant_id VARCHAR,
    feature VARCHAR,
    prompt_template VARCHAR,
    prompt_version VARCHAR,
    request_id VARCHAR,
    retry_attempt BIGINT,
    duplicate_of VARCHAR,
    tool_name VARCHAR,
    agent_name VARCHAR,
    data_source VARCHAR,
    attributes VARCHAR,
    resource VARCHAR
);
CREATE INDEX spans_trace ON spans (trace_id);

-- Message content lives apart so analytics scans never read it.
CREATE TABLE content (
    content_key UHUGEINT PRIMARY KEY,
    project_id VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    start_time TIMESTAMP_NS NOT NULL,
    system_instructions VARCHAR,
    input_messages VARCHAR,
    output_messages VARCHAR,
    events VARCHAR
);

CREATE TABLE projects (
    project_id VARCHAR PRIMARY KEY,
    created_at TIMESTAMP NOT NULL
);

-- API keys are stored as SHA-256 hashes only.
CREATE TABLE api_keys (
    key_hash VARCHAR PRIMARY KEY,
    project_id VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- How far the spool has been written into this store (updated in the same transaction).
CREATE TABLE spool_state (
    id INTEGER PRIMARY KEY,
    segment BIGINT NOT NULL,
    "offset" BIGINT NOT NULL
);

INSERT INTO projects VALUES ('default', now()::TIMESTAMP);
