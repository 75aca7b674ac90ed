-- What each evaluation's judge calls cost (issue 30): an evaluator's daily budget is the sum of
-- the day's, read at start, so a restart does not start the day's count again.
ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS cost_usd DOUBLE;
