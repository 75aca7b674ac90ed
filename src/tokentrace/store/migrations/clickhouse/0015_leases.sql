-- Job leases (issue 30): which node runs a job that must run on one node at a time, when
-- several share this ClickHouse. The newest revision of a lease's row is the lease.
CREATE TABLE IF NOT EXISTS leases (
    name String,
    holder String,
    expires_at DateTime64(6, 'UTC'),
    revision UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY name;
