-- What the server keeps besides spans: each ingest node's spool position (written after its
-- data, not with it: a replay from an older position stores nothing twice), alert rules set
-- through the API, sampling policies and the traces sampling kept. Latest row wins.
CREATE TABLE IF NOT EXISTS spool_positions (
    node String,
    segment Int64,
    offset Int64,
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY node;

CREATE TABLE IF NOT EXISTS alert_rules (
    project_id String,
    name String,
    spec String,
    deleted Bool,
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY (project_id, name);

CREATE TABLE IF NOT EXISTS sampling_policies (
    project_id String,
    spec Nullable(String),
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY project_id;

CREATE TABLE IF NOT EXISTS retained_traces (
    project_id LowCardinality(String),
    trace_id String,
    reason LowCardinality(String),
    decided_at DateTime64(6, 'UTC')
) ENGINE = ReplacingMergeTree
ORDER BY (project_id, trace_id);
