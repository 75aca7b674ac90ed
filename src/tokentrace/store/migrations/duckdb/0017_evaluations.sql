-- What evaluators owe (issue 30): one row per (evaluator, version, span), queued when the call
-- is seen, settled when its score is written or it has failed for good. A restart picks up
-- what is due; a span is never queued twice for the same evaluator version.
-- eval_key = md5_number of the key's five fields (as span_key is the span's): one short key to
-- index, not five strings.
CREATE TABLE IF NOT EXISTS evaluations (
    eval_key UHUGEINT PRIMARY KEY,
    project_id VARCHAR NOT NULL,
    evaluator VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    state VARCHAR NOT NULL,  -- due, done, failed, skipped
    attempts INTEGER NOT NULL,
    due_at TIMESTAMP NOT NULL,
    error VARCHAR,
    updated_at TIMESTAMP NOT NULL
);
