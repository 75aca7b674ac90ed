-- The hours each session has spans in (issue 27: the session list at 10M spans). A session is
-- summed over every span it has; without these hours that was a scan of every stored span's
-- session_id (~94 ms at 10M spans), with them a scan of its hours (the start time's zone maps
-- find them). Keyed by the session id's MD5, as trace_hours is by the trace id's. Tags set later
-- (inheritance, log records, duplicates lending theirs) add their hours: the hours are a superset.
CREATE TABLE IF NOT EXISTS session_hours (
    project_id VARCHAR NOT NULL,
    session_key UHUGEINT NOT NULL,  -- md5_number(session_id)
    hour TIMESTAMP NOT NULL
);
INSERT INTO session_hours
SELECT DISTINCT project_id, md5_number(session_id), date_trunc('hour', start_time::TIMESTAMP)
FROM spans WHERE session_id IS NOT NULL;
