-- The self-hosted deployment that served a call (issue 29): its cost is a share of the
-- deployment's hour, set by the amortize job. Older spans keep NULL: priced per token.
ALTER TABLE spans ADD COLUMN IF NOT EXISTS deployment VARCHAR;
