-- The attribution tags that arrived on a span's OTLP log records (ingest/logs.py), lent to the
-- span whichever arrives first. Apart from content: it is almost always empty, so joining each
-- written batch to it costs nothing.
CREATE TABLE record_tags (
    tag_key UHUGEINT PRIMARY KEY,
    project_id VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    start_time TIMESTAMP_NS NOT NULL,
    user_id VARCHAR,
    session_id VARCHAR,
    tenant_id VARCHAR,
    feature VARCHAR,
    prompt_template VARCHAR,
    prompt_version VARCHAR
);
