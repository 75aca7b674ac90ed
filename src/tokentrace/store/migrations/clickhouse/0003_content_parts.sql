-- A span's content may come in parts (with the span, and as OTLP log records before or after
-- it). DuckDB merges them at write; ClickHouse keeps every part and merges at read (the same
-- rules: the first complete message list, events accumulated without repeats).
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

INSERT INTO content_parts SELECT * FROM content;

DROP TABLE IF EXISTS content;
