-- Alerts: rules added through the API (rules from --alerts FILE live in the file), the state
-- of each (rule, group) so a restart neither loses nor repeats a notification, and the
-- notifications themselves, delivered or still owed.
CREATE TABLE alert_rules (
    project_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    spec VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, name)
);
CREATE TABLE alert_states (
    project_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    group_key VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    value DOUBLE,
    active_since TIMESTAMP,
    fired_at TIMESTAMP,
    resolved_at TIMESTAMP,
    evaluated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, rule, group_key)
);
CREATE TABLE alert_events (
    event_id VARCHAR PRIMARY KEY,
    project_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    group_key VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    payload VARCHAR NOT NULL,
    delivered_at TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error VARCHAR
);
