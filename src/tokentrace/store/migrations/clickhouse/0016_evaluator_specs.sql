-- Evaluators added through the API (issue 30). See the DuckDB migration of the same name; here a
-- delete is a newer revision marked deleted, as for alert_rules.
CREATE TABLE IF NOT EXISTS evaluator_specs (
    project_id String,
    name String,
    spec String,
    deleted Bool,
    updated UInt64
) ENGINE = ReplacingMergeTree(updated)
ORDER BY (project_id, name);
