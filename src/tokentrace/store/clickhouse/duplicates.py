"""ClickHouse's side of duplicate marking: the LLM spans that may record the same provider call
as a span of a new batch (store/duckdb/writes.py's _DUPLICATE_CANDIDATES, as ClickHouse SQL), and the
revised spans once store/duplicates.py has decided: duplicate_of set, and the counted span
given the attribution tags only its duplicates carry."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from tokentrace import semconv
from tokentrace.canonical import FIELD_NAMES, TAG_FIELDS
from tokentrace.store.duplicates import Candidate, Resolution
from tokentrace.store.python_rows import exact_rows, python_rows, restore
from tokentrace.store.sql import PROVIDER_CALL

_BETWEEN = "start_time BETWEEN {lo:DateTime64(9, 'UTC')} AND {hi:DateTime64(9, 'UTC')}"
_KEY = "concat(project_id, ':', trace_id, ':', span_id)"
_USAGE_FIELDS = " + ".join(
    f"toUInt8({c} IS NOT NULL)"
    for c in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
)
_COLUMNS = f"""{_KEY} AS key, project_id, trace_id, span_id, parent_span_id,
    assumeNotNull(provider) AS provider, request_model, response_id,
    toUnixTimestamp64Nano(start_time) AS start_ns, toUnixTimestamp64Nano(end_time) AS end_ns,
    {_USAGE_FIELDS} AS usage_fields,
    toUInt8(response_id IS NOT NULL) + toUInt8(response_model IS NOT NULL)
        + toUInt8(finish_reason IS NOT NULL) AS details,
    coalesce(streaming AND position(attributes, '"{semconv.USAGE_REPORT}":true') > 0, false) AS usage_report,
    duplicate_of, service_name, input_tokens, output_tokens, error_type,
    nullIf(JSONExtractString(attributes, 'otel.scope.name'), '') AS scope"""
_USAGE = "(assumeNotNull(provider), assumeNotNull(input_tokens), coalesce(output_tokens, -1))"
# Only spans with a possible partner: an LLM parent or child of the same provider, a usage
# report and its usage-less siblings, a response id seen twice, or a possible twin in another
# trace (calls with a batch call's provider and token counts, where such calls are in two
# traces and one is a root: store/duplicates.py checks the rest). The batch's (provider, input,
# output) tuples come as three arrays and are looked up as a set (IN a subquery, hashed once):
# has() on an array of tuples, or IN the array parameter itself, compares every LLM span of the
# window with every tuple (a 100k-span batch brings ~60k), minutes per batch at 10M spans.
CANDIDATES = f"""
WITH llm AS (
    SELECT {_COLUMNS} FROM spans FINAL
    WHERE has({{traces:Array(String)}}, trace_id) AND {PROVIDER_CALL} AND {_BETWEEN}
),
related AS (
    SELECT c.key AS a, p.key AS b FROM llm AS c INNER JOIN llm AS p
        ON p.project_id = c.project_id AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
       AND p.provider = c.provider
    UNION ALL
    SELECT r.key AS a, s.key AS b FROM llm AS r INNER JOIN llm AS s
        ON s.project_id = r.project_id AND s.trace_id = r.trace_id AND s.parent_span_id = r.parent_span_id
       AND s.provider = r.provider
    WHERE r.usage_report AND s.usage_fields = 0 AND s.key != r.key
    UNION ALL
    SELECT r.key AS a, s.key AS b FROM llm AS r INNER JOIN llm AS s
        ON s.project_id = r.project_id AND s.trace_id = r.trace_id AND s.parent_span_id = r.parent_span_id
       AND s.provider = r.provider
    WHERE r.usage_fields = 0 AND s.usage_fields = 0 AND r.error_type IS NOT NULL
      AND s.error_type = r.error_type AND s.key != r.key
)
SELECT * FROM llm WHERE key IN (SELECT a FROM related UNION ALL SELECT b FROM related)
UNION DISTINCT
SELECT * EXCEPT (answers) FROM (
    SELECT {_COLUMNS}, count() OVER (PARTITION BY project_id, response_id) AS answers FROM spans FINAL
    WHERE has({{responses:Array(String)}}, response_id) AND {PROVIDER_CALL} AND {_BETWEEN}
) WHERE answers > 1
UNION DISTINCT
SELECT * EXCEPT (traces, roots) FROM (
    SELECT {_COLUMNS},
           uniqExact(trace_id) OVER (PARTITION BY project_id, {_USAGE}) AS traces,
           countIf(parent_span_id = '') OVER (PARTITION BY project_id, {_USAGE}) AS roots
    FROM spans FINAL
    WHERE input_tokens IS NOT NULL
      AND {_USAGE} IN (SELECT arrayJoin(arrayZip(
          {{usage_providers:Array(String)}}, {{usage_inputs:Array(Int64)}}, {{usage_outputs:Array(Int64)}})))
      AND {PROVIDER_CALL} AND {_BETWEEN}
) WHERE traces > 1 AND roots > 0
"""

#: The spans a resolution revises, whole (with their identity as `key`).
INVOLVED = f"""
SELECT {_KEY} AS key, {", ".join(FIELD_NAMES)} FROM spans FINAL
WHERE has({{keys:Array(String)}}, {_KEY}) AND {_BETWEEN}
"""


def candidates(table: pa.Table) -> list[Candidate]:
    """The CANDIDATES rows as store/duplicates.py's candidates."""
    return [Candidate(**row) for row in python_rows(table)]


def revised(involved: pa.Table, resolution: Resolution) -> tuple[pa.Table, list[bool]]:
    """The involved spans that change (duplicate_of set, tags lent to the counted span), as
    canonical rows; for each, whether its tags changed."""
    listed, schema = exact_rows(involved)
    rows: dict[str, dict[str, Any]] = {r["key"]: r for r in listed}
    changed: dict[str, bool] = {}
    for key, duplicate_of in resolution.changes.items():
        if key in rows:
            rows[key]["duplicate_of"] = duplicate_of
            changed[key] = False
    lent: dict[str, dict[str, Any]] = {}
    for duplicate, counted in sorted(resolution.counted_by.items()):
        if duplicate in rows and counted in rows:
            for tag in TAG_FIELDS:
                value = rows[duplicate][tag]
                if value is not None and rows[counted][tag] is None:
                    lent.setdefault(counted, {}).setdefault(tag, value)
    for counted, tags in lent.items():
        rows[counted].update(tags)
        changed[counted] = True
    keys = sorted(changed)
    table = restore([rows[k] for k in keys], schema).select(list(FIELD_NAMES)) if keys else None
    return table, [changed[k] for k in keys]
