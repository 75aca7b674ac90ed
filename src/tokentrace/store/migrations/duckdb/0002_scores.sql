-- Scores: human feedback, evaluator verdicts and ingest rule checks on a trace or a span
-- (span_id '' for the trace). score_key = md5_number(project_id || ':' || score_id): the
-- same score sent again replaces the old one.
CREATE TABLE scores (
    score_key UHUGEINT PRIMARY KEY,
    project_id VARCHAR NOT NULL,
    score_id VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    span_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    data_type VARCHAR NOT NULL,
    value DOUBLE,
    string_value VARCHAR,
    comment VARCHAR,
    source VARCHAR NOT NULL,
    created_at TIMESTAMP_NS NOT NULL
);
CREATE INDEX scores_trace ON scores (trace_id);
