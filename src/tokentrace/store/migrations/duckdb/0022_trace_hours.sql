-- The hours each trace has spans in (issue 27, goal 3: one trace in under 100 ms at 10M spans).
-- Since 0018 spans have no index (it cost the write ~4 µs a span): a trace's spans were found by
-- comparing every stored trace_id, 61 ms at 10M spans and growing with the store. A trace's
-- hours are read here (about one row a trace, keyed by the trace id's MD5: stored, so it must not
-- change with DuckDB's version, as its hash() may), and its spans among those hours only, which
-- the start time's zone maps find (spans are stored about in the order they start).
CREATE TABLE IF NOT EXISTS trace_hours (
    project_id VARCHAR NOT NULL,
    trace_key UHUGEINT NOT NULL,  -- md5_number(trace_id)
    hour TIMESTAMP NOT NULL
);
INSERT INTO trace_hours
SELECT DISTINCT project_id, md5_number(trace_id), date_trunc('hour', start_time::TIMESTAMP) FROM spans;
