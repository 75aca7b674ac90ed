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

-- Alert state per (rule, group), and the notifications. A state's later row replaces it (a
-- cleared one is a row marked cleared); an event's delivery attempts are later rows of it.
CREATE TABLE IF NOT EXISTS alert_states (
    project_id String,
    rule String,
    group_key String,
    status String,
    value Nullable(Float64),
    active_since Nullable(DateTime64(6, 'UTC')),
    fired_at Nullable(DateTime64(6, 'UTC')),
    resolved_at Nullable(DateTime64(6, 'UTC')),
    evaluated_at DateTime64(6, 'UTC'),
    cleared Bool,
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY (project_id, rule, group_key);

CREATE TABLE IF NOT EXISTS alert_events (
    event_id String,
    project_id String,
    rule String,
    group_key String,
    status String,
    created_at DateTime64(6, 'UTC'),
    payload String,
    delivered_at Nullable(DateTime64(6, 'UTC')),
    attempts UInt32,
    last_error Nullable(String),
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY event_id;
