-- Tail sampling without transactions (store/clickhouse/sampling.py). A sweep moves
-- open -> committed -> done (or, cut short while open, abandoned); the rollup rows it writes carry
-- its id and count only once it has committed, so it takes effect in one INSERT.
CREATE TABLE IF NOT EXISTS sampling_sweeps (
    project_id String,
    sweep UInt64,
    state LowCardinality(String),
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY sweep;

-- The traces a sweep drops, until their spans and content are deleted.
CREATE TABLE IF NOT EXISTS sampling_pending (
    project_id String,
    sweep UInt64,
    trace_id String
) ENGINE = MergeTree
ORDER BY (sweep, trace_id);

ALTER TABLE rollup_minute ADD COLUMN IF NOT EXISTS sweep UInt64 DEFAULT 0;
ALTER TABLE rollup_user_hour ADD COLUMN IF NOT EXISTS sweep UInt64 DEFAULT 0;
