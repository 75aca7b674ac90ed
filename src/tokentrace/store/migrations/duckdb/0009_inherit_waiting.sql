-- The stored spans still lacking an inherited tag whose chain of ancestors breaks at a span not
-- stored yet (`missing_key`): when it arrives, they take its tags (store/inheritance.py). A batch
-- is then written without walking the stored traces it touches.
CREATE TABLE inherit_waiting (
    span_key UHUGEINT PRIMARY KEY,
    missing_key UHUGEINT NOT NULL,
    project_id VARCHAR NOT NULL,
    trace_id VARCHAR NOT NULL,
    start_time TIMESTAMP_NS NOT NULL
);

-- The spans already stored that wait: walk up from each span lacking a tag; its chain breaks
-- where the next parent is not stored (a root ends it; 256 generations end a cycle).
INSERT INTO inherit_waiting
WITH RECURSIVE walk AS (
    SELECT span_key, project_id, trace_id, start_time, parent_span_id AS next_id, 0 AS depth
    FROM spans
    WHERE parent_span_id <> ''
      AND (user_id IS NULL OR session_id IS NULL OR tenant_id IS NULL OR feature IS NULL
           OR prompt_template IS NULL OR prompt_version IS NULL OR agent_name IS NULL)
    UNION ALL
    SELECT w.span_key, w.project_id, w.trace_id, w.start_time, p.parent_span_id, w.depth + 1
    FROM walk w
    JOIN spans p ON p.project_id = w.project_id AND p.trace_id = w.trace_id AND p.span_id = w.next_id
    WHERE w.depth < 256 AND w.next_id <> ''
),
ends AS (
    SELECT span_key, project_id, trace_id, start_time, next_id FROM walk
    QUALIFY row_number() OVER (PARTITION BY span_key ORDER BY depth DESC) = 1
)
SELECT span_key, md5_number(project_id || ':' || trace_id || next_id), project_id, trace_id, start_time
FROM ends
WHERE next_id <> ''
  AND md5_number(project_id || ':' || trace_id || next_id) NOT IN (SELECT span_key FROM spans);
