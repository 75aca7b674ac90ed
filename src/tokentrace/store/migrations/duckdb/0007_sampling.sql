-- Tail sampling by retention. A trace leaving the recent window is judged once: kept traces
-- are listed in retained_traces (with the first reason met); the others lose their spans and
-- content, and their numbers move into rollup rows marked sampled_out, which a recompute of
-- the bucket leaves alone (it can no longer see those spans).
ALTER TABLE rollup_minute ADD COLUMN sampled_out BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE rollup_user_hour ADD COLUMN sampled_out BOOLEAN NOT NULL DEFAULT false;
CREATE TABLE retained_traces (
    project_id VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    PRIMARY KEY (project_id, trace_id)
);
-- Policies set through the API (a --sampling FILE's live in the file); JSON.
CREATE TABLE sampling_policies (
    project_id VARCHAR PRIMARY KEY,
    spec VARCHAR NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
