-- What evaluators owe (issue 30): one row per (evaluator, version, span), its newest revision
-- the one that counts. See the DuckDB migration of the same name.
CREATE TABLE IF NOT EXISTS evaluations (
    project_id String,
    evaluator String,
    version String,
    trace_id String,
    span_id String,
    state String,
    attempts Int32,
    due_at DateTime64(6, 'UTC'),
    error Nullable(String),
    updated_at DateTime64(6, 'UTC'),
    revision UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (project_id, evaluator, version, trace_id, span_id);
