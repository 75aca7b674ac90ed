-- Daily per-user rollups by the user hours' keys (canonical.USER_DAY): cost per user over a
-- month reads 30 days of rows instead of 720 hours, and the hours at its edges from
-- rollup_user_hour. The store sums them from the finer rows as it goes (store/clickhouse/rollups.py).
CREATE TABLE IF NOT EXISTS rollup_user_day (
    project_id LowCardinality(String),
    day DateTime('UTC'),
    tenant_id LowCardinality(Nullable(String)),
    user_id Nullable(String),
    status LowCardinality(Nullable(String)),
    error_type LowCardinality(Nullable(String)),
    requests UInt64,
    spans UInt64,
    input_tokens Int64,
    output_tokens Int64,
    total_tokens Int64,
    cache_read_tokens Int64,
    cache_write_tokens Int64,
    reasoning_tokens Int64,
    cost_usd Float64,
    unpriced_spans UInt64,
    retries UInt64,
    http_resends UInt64,
    retry_tokens Int64,
    retry_cost_usd Float64,
    truncated UInt64,
    streamed UInt64,
    first_seen DateTime64(9, 'UTC'),
    last_seen DateTime64(9, 'UTC'),
    sampled_out Bool DEFAULT false,
    version UInt64,
    sweep UInt64 DEFAULT 0
) ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day);

-- A store that has user hours already: its days so far from them (sampled-out rows too, whose
-- spans are gone, summed with the rest as the store does), each cell's newest valid version,
-- all under one version; its mark where the hours' whole days end.
-- Guarded, so a migration run again adds nothing.
INSERT INTO rollup_user_day
SELECT project_id, toStartOfDay(hour) AS day, tenant_id, user_id, status, error_type,
    sum(requests),
    sum(spans),
    sum(input_tokens),
    sum(output_tokens),
    sum(total_tokens),
    sum(cache_read_tokens),
    sum(cache_write_tokens),
    sum(reasoning_tokens),
    sum(cost_usd),
    sum(unpriced_spans),
    sum(retries),
    sum(http_resends),
    sum(retry_tokens),
    sum(retry_cost_usd),
    sum(truncated),
    sum(streamed),
    min(first_seen), max(last_seen),
    false, toUInt64(toUnixTimestamp64Nano(now64(9))), toUInt64(0)
FROM rollup_user_hour
WHERE spans > 0
  AND hour < (SELECT toStartOfDay(max(complete_until)) FROM rollup_marks WHERE grain = 'rollup_user_hour')
  AND (sweep = 0 OR sweep IN (SELECT sweep FROM sampling_sweeps FINAL WHERE state IN ('committed', 'done')))
  AND (sampled_out OR (project_id, hour, ifNull(user_id, '\0'), version) IN (
      SELECT project_id, hour, ifNull(user_id, '\0'), max(version) FROM rollup_user_hour
      WHERE NOT sampled_out
        AND (sweep = 0 OR sweep IN (SELECT sweep FROM sampling_sweeps FINAL WHERE state IN ('committed', 'done')))
      GROUP BY project_id, hour, ifNull(user_id, '\0')))
  AND (SELECT count() FROM rollup_user_day) = 0
GROUP BY project_id, day, tenant_id, user_id, status, error_type
SETTINGS prefer_column_name_to_alias = 1, transform_null_in = 1;

INSERT INTO rollup_marks
SELECT 'rollup_user_day', toStartOfDay(max(complete_until)), toUInt64(toUnixTimestamp64Nano(now64(9)))
FROM rollup_marks
WHERE grain = 'rollup_user_hour' AND (SELECT count() FROM rollup_marks WHERE grain = 'rollup_user_day') = 0
HAVING count() > 0;
