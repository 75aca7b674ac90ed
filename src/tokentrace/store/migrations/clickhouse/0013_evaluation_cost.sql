-- What each evaluation's judge calls cost (issue 30). See the DuckDB migration of the same name.
ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS cost_usd Nullable(Float64);
