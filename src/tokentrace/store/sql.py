"""SQL text both stores run as written (DuckDB and ClickHouse read it alike): what an LLM call
is, and the input-length bucket a span falls in. The latency sketch's bucket is sketch.py's."""

from __future__ import annotations

from tokentrace.canonical import INPUT_BUCKETS, LLM_OPERATIONS

#: The LLM operations as an SQL list, for `<column> IN LLM_OPERATIONS_SQL`.
LLM_OPERATIONS_SQL = "(" + ", ".join(f"'{op}'" for op in LLM_OPERATIONS) + ")"
#: True for a span that records an LLM call.
LLM_CALL = f"operation IN {LLM_OPERATIONS_SQL}"
#: True for an LLM call with its provider named: the spans duplicate marking compares.
PROVIDER_CALL = f"{LLM_CALL} AND provider IS NOT NULL"


def input_bucket(prefix: str = "") -> str:
    """The derived field `input_bucket` (canonical.INPUT_BUCKETS) of a span; `prefix` is its
    table's alias with the dot."""
    cases = " ".join(
        f"WHEN {prefix}input_tokens < {int(bound)} THEN '{label}'" for bound, label in INPUT_BUCKETS if bound
    )
    return f"(CASE WHEN {prefix}input_tokens IS NULL THEN NULL {cases} ELSE '{INPUT_BUCKETS[-1][1]}' END)"
