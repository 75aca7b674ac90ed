"""SQL both stores share: what an LLM call is, the input-length bucket a span falls in, and the
one compiler of filters and groupings (`where_clause`, `select_groups`) that writes a query's
WHERE and GROUP BY in either dialect. Names reach SQL only after they are checked against the
canonical fields (or a rollup's keys); values always travel as parameters. The latency
sketch's bucket is sketch.py's."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from tokentrace.canonical import FIELD_NAMES, GROUPABLE_FIELDS, INPUT_BUCKETS, LLM_OPERATIONS, Grain
from tokentrace.store.filters import SpanFilter

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


class Dialect(Protocol):
    """One query's parameters as its engine takes them, and the few expressions that differ
    between engines. DuckDB's is a list (`?` placeholders), ClickHouse's a dict (named, typed
    placeholders): either is passed to the engine as the query's parameters."""

    #: A span's start time as a bucket expression takes it.
    span_time: str

    def param(self, name: str, value: Any, kind: str = "value") -> str:
        """Keep `value` as the parameter `name`; its placeholder. `kind`: value (compared with a
        column as it is), instant (a span's time), second (a rollup bucket's time)."""

    def contains(self, column: str, text: str) -> str:
        """True where `column` contains `text`, ignoring case (text matched literally)."""

    def bucket(self, time_column: str, seconds: int) -> str:
        """The select item `bucket`: the start of a row's time bucket `seconds` wide."""


def allowed_column(name: str, allowed: Collection[str]) -> str:
    """A column name that may be inlined in SQL: only names in `allowed` pass."""
    if name not in allowed:
        raise ValueError(f"{name!r} is not allowed here")
    return name


def field_expression(name: str, prefix: str = "") -> str:
    """A canonical or derived field (`input_bucket`) as an SQL expression over the spans table."""
    if name == "input_bucket":
        return input_bucket(prefix)
    return f"{prefix}{allowed_column(name, FIELD_NAMES)}"


def where_clause(
    f: SpanFilter, d: Dialect, alias: str = "", grain: Grain | None = None, times_only: bool = False
) -> str:
    """The WHERE condition of a read: over spans, or over `grain`'s rollup table (whose keys
    are all it can filter by). `times_only` stops after the project and the time range."""
    p = f"{alias}." if alias else ""
    time_column, kind = (grain.time_column, "second") if grain else ("start_time", "instant")
    clauses = [f"{p}project_id = {d.param('project', f.project_id)}"]
    if f.since is not None:
        clauses.append(f"{p}{time_column} >= {d.param('since', f.since, kind)}")
    if f.until is not None:
        clauses.append(f"{p}{time_column} < {d.param('until', f.until, kind)}")
    if times_only:
        return " AND ".join(clauses)
    for n, (name, value) in enumerate(f.equals.items()):
        if grain is not None and name not in grain.keys:
            raise ValueError(f"{grain.table} is not kept by {name!r}")
        column = f"{p}{name}" if grain else field_expression(name, p)
        if isinstance(value, tuple):  # one of these values
            placeholders = ", ".join(d.param(f"eq{n}", v) for v in value)
            clauses.append(f"{column} IN ({placeholders})" if value else "1 = 0")
        else:
            clauses.append(f"{column} IS NULL" if value is None else f"{column} = {d.param(f'eq{n}', value)}")
    if f.name_contains:
        if grain is not None:
            raise ValueError("rollups are not kept by span name")
        clauses.append(d.contains(f"{p}name", f.name_contains))
    return " AND ".join(clauses)


def select_groups(
    group_by: tuple[str, ...],
    d: Dialect,
    bucket_seconds: int | None = None,
    alias: str = "",
    grain: Grain | None = None,
    time_column: str | None = None,
) -> list[str]:
    """The select items `expression AS name` a read groups by: the time bucket first (when
    asked), then each field of `group_by`; over `grain`'s rollup table only its keys, and
    buckets a multiple of its width. `time_column` overrides the bucket's time."""
    p = f"{alias}." if alias else ""
    if grain is None:
        groups = [f"{field_expression(allowed_column(g, GROUPABLE_FIELDS), p)} AS {g}" for g in group_by]
    else:
        for g in group_by:
            if g not in grain.keys:
                raise ValueError(f"{grain.table} is not kept by {g!r}")
        groups = [f"{p}{g} AS {g}" for g in group_by]
    if bucket_seconds is not None:
        if grain is not None and bucket_seconds % grain.seconds:
            raise ValueError(f"{grain.table}'s time buckets are multiples of {grain.seconds} s")
        time = time_column or (f"{p}{grain.time_column}" if grain else d.span_time)
        groups.insert(0, d.bucket(time, bucket_seconds))
    return groups


def names(groups: list[str]) -> list[str]:
    """The names of select items `expression AS name`."""
    return [g.rsplit(" AS ", 1)[1] for g in groups]


def group_clause(groups: list[str]) -> str:
    """The GROUP BY of select items `expression AS name` (empty without any)."""
    return f"GROUP BY {', '.join(names(groups))}" if groups else ""
