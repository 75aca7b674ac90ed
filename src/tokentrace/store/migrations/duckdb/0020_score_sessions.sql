-- Session scores (issue 30): a score may judge a whole session (a session evaluator's verdict, a
-- person's thumbs on a session's page). DuckDB alters no table an index depends on: the trace
-- index is dropped and made again around the new column.
DROP INDEX IF EXISTS scores_trace;
ALTER TABLE scores ADD COLUMN IF NOT EXISTS session_id VARCHAR;
CREATE INDEX scores_trace ON scores (trace_id);
