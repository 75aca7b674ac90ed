-- Evaluators added through the API (issue 30): one project's each, its spec as sent (JSON,
-- validated when added, read again by the evaluation job).
CREATE TABLE IF NOT EXISTS evaluator_specs (
    project_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    spec VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, name)
);
