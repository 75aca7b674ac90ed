-- The attribution tags that arrived on a span's OTLP log records (ingest/logs.py), lent to the
-- span whichever arrives first; every part kept, read with the first value per tag.
CREATE TABLE IF NOT EXISTS record_tags (
    project_id LowCardinality(String),
    trace_id String,
    span_id String,
    start_time DateTime64(9, 'UTC'),
    user_id Nullable(String),
    session_id Nullable(String),
    tenant_id Nullable(String),
    feature Nullable(String),
    prompt_template Nullable(String),
    prompt_version Nullable(String)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (project_id, trace_id, span_id);
