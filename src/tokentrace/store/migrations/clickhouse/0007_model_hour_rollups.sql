-- Hourly rollups by canonical.MODEL_ROLLUP_KEYS (environment, provider, models, operation,
-- outcome): latency percentiles per model and hour over a month merge a few thousand sketches
-- instead of ~100k. The store sums them from rollup_hour as it goes (store/clickhouse/rollups.py).
CREATE TABLE IF NOT EXISTS rollup_model_hour (
    project_id LowCardinality(String),
    hour DateTime('UTC'),
    environment LowCardinality(Nullable(String)),
    provider LowCardinality(Nullable(String)),
    request_model LowCardinality(Nullable(String)),
    response_model LowCardinality(Nullable(String)),
    operation LowCardinality(Nullable(String)),
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
    duration_ms Map(Int16, UInt64),
    ttft_ms Map(Int16, UInt64),
    tpot_ms Map(Int16, UInt64),
    sampled_out Bool DEFAULT false,
    version UInt64,
    sweep UInt64 DEFAULT 0
) ENGINE = MergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project_id, hour);

-- A store that has hour rows already: its hours so far from them, each bucket's newest valid
-- version, all under one version; its mark the hours' mark.
-- Guarded, so a migration run again adds nothing.
INSERT INTO rollup_model_hour
SELECT project_id, hour, environment, provider, request_model, response_model, operation, status, error_type,
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
    min(first_seen), max(last_seen), sumMap(duration_ms), sumMap(ttft_ms), sumMap(tpot_ms),
    false, toUInt64(toUnixTimestamp64Nano(now64(9))), toUInt64(0)
FROM rollup_hour
WHERE spans > 0
  AND hour < (SELECT max(complete_until) FROM rollup_marks WHERE grain = 'rollup_hour')
  AND (sweep = 0 OR sweep IN (SELECT sweep FROM sampling_sweeps FINAL WHERE state IN ('committed', 'done')))
  AND (sampled_out OR (project_id, hour, version) IN (
      SELECT project_id, hour, max(version) FROM rollup_hour
      WHERE NOT sampled_out
        AND (sweep = 0 OR sweep IN (SELECT sweep FROM sampling_sweeps FINAL WHERE state IN ('committed', 'done')))
      GROUP BY project_id, hour))
  AND (SELECT count() FROM rollup_model_hour) = 0
GROUP BY project_id, hour, environment, provider, request_model, response_model, operation, status, error_type
SETTINGS prefer_column_name_to_alias = 1, transform_null_in = 1;

INSERT INTO rollup_marks
SELECT 'rollup_model_hour', max(complete_until), toUInt64(toUnixTimestamp64Nano(now64(9)))
FROM rollup_marks
WHERE grain = 'rollup_hour' AND (SELECT count() FROM rollup_marks WHERE grain = 'rollup_model_hour') = 0
HAVING count() > 0;
