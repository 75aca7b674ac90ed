-- Session scores (issue 30). See the DuckDB migration of the same name.
ALTER TABLE scores ADD COLUMN IF NOT EXISTS session_id Nullable(String);
