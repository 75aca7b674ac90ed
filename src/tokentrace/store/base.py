"""The Store protocol: what ingest writes and what query/ reads, independent of the engine.

query/ decides what to compute; a store only knows how to run it on its engine. Column
names passed in (group-by, measures) are canonical field names, validated by query/ and
again by the store before they reach SQL; values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import pyarrow as pa

from tokentrace.canonical import DERIVED_FIELDS, FIELD_NAMES, GRAINS, MINUTE, Grain, Tables


@dataclass(frozen=True)
class SpanFilter:
    """Which spans a read covers. Every read is scoped by project."""

    project_id: str
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC
    equals: Mapping[str, Any] = field(default_factory=dict)  # canonical field → value
    name_contains: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.equals) - set(FIELD_NAMES) - DERIVED_FIELDS
        if unknown:
            raise ValueError(f"not canonical fields: {sorted(unknown)}")


SCORE_OPERATORS = ("=", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class ScoreCondition:
    """A trace qualifies when it has a score `name` whose value satisfies `op value`.

    A numeric value compares with numeric and boolean scores (true is 1); a text value
    matches a categorical label (or "true"/"false")."""

    name: str
    op: str
    value: float | str

    @property
    def column(self) -> str:
        """The score column the condition compares: the label for text, else the value."""
        return "string_value" if isinstance(self.value, str) else "value"

    def __post_init__(self) -> None:
        if self.op not in SCORE_OPERATORS:
            raise ValueError(f"score operator must be one of {SCORE_OPERATORS}, got {self.op!r}")
        if isinstance(self.value, str) and self.op not in ("=", "!="):
            raise ValueError("a text score value can only be compared with = or !=")


@dataclass(frozen=True)
class TraceFilter:
    """Trace-list filters: a trace qualifies when its spans match `spans` and its totals pass."""

    spans: SpanFilter
    min_cost_usd: float | None = None
    min_duration_ms: float | None = None
    errors_only: bool = False
    scores: tuple[ScoreCondition, ...] = ()


class Change(NamedTuple):
    """A span written or changed in a bucket a rollup may already hold: where it falls, whose
    it is, and whether its attribution tags changed (then its tag-less self's bucket did too)."""

    project_id: str
    start: datetime
    user_id: str | None
    tags_changed: bool


Cell = tuple[str, datetime, str | None]


def touched_buckets(
    changes: Iterable[Change], marks: Mapping[str, datetime]
) -> list[tuple[Grain, list[Cell]]]:
    """Per rollup table with a mark (naive UTC), the buckets before it that the changes touch, as
    (project, bucket start, value of the grain's narrowing key or None), sorted."""
    changes = list(changes)
    out = []
    for grain in GRAINS:
        mark = marks.get(grain.table)
        cells = _cells(changes, grain, mark) if mark is not None else []
        if cells:
            out.append((grain, cells))
    return out


def _cells(changes: list[Change], grain: Grain, mark: datetime) -> list[Cell]:
    found: set[Cell] = set()
    for change in changes:
        at = grain.floor(change.start.replace(tzinfo=None))
        if at >= mark:
            continue
        if grain.narrowed_by is None:
            found.add((change.project_id, at, None))
            continue
        found.add((change.project_id, at, getattr(change, grain.narrowed_by)))
        if change.tags_changed:
            found.add((change.project_id, at, None))
    return sorted(found, key=lambda c: (c[0], c[1], c[2] or ""))


#: What an alert state row holds (with its project): Store.alert_states' keys.
ALERT_STATE_FIELDS = (
    "rule",
    "group_key",
    "status",
    "value",
    "active_since",
    "fired_at",
    "resolved_at",
    "evaluated_at",
)

#: Why a trace keeps its detail, in the order they are tested (a trace gets the first it meets).
KEEP_REASONS = ("error", "cost", "slow", "score", "alert", "tenant", "user", "base_rate")


@dataclass(frozen=True)
class SamplingPolicy:
    """Which traces keep their span detail once their newest span is `recent` old; the others
    lose spans and content but keep their numbers in the rollups. `base_rate` keeps that share
    of the rest by trace id (as OpenTelemetry's TraceIdRatioBased: the same traces on every
    node); `keep_slower_than_percentile` compares a trace with traces of the same root span
    name; `keep_scores` are score conditions any of which keeps a trace; `keep_alerted` keeps
    the example traces a firing alert's notification named. `keep_for` ends a kept trace's
    detail that long after its newest span, its numbers kept as a dropped trace's are."""

    recent: timedelta = timedelta(hours=48)
    base_rate: float = 0.0
    keep_errors: bool = True
    keep_cost_above_usd: float | None = None
    keep_slower_than_percentile: float | None = 99.0
    keep_scores: tuple[ScoreCondition, ...] = ()
    keep_alerted: bool = True
    keep_tenants: tuple[str, ...] = ()
    keep_users: tuple[str, ...] = ()
    #: A trace still growing after this long is judged anyway (with what it has).
    max_open: timedelta = timedelta(days=7)
    #: How long a kept trace keeps its detail (None: until a person deletes it).
    keep_for: timedelta | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.base_rate <= 1.0:
            raise ValueError("base_rate must be between 0 and 1")
        if self.keep_slower_than_percentile is not None and not 0 < self.keep_slower_than_percentile < 100:
            raise ValueError("keep_slower_than_percentile must be between 0 and 100")
        if self.recent <= timedelta(0) or self.max_open < self.recent:
            raise ValueError("recent must be positive and max_open at least recent")
        if self.keep_for is not None and self.keep_for < self.recent:
            raise ValueError("keep_for must be at least recent")


def score_clause(
    conditions: tuple[ScoreCondition, ...], param: Callable[[str, bool], str]
) -> tuple[str, dict[str, Any]]:
    """A condition on score rows true when any of `conditions` holds, and its parameters;
    `param(name, is_text)` writes a parameter in the store's SQL."""
    clauses, params = [], {}
    for n, c in enumerate(conditions):
        text = isinstance(c.value, str)
        value = param(f"score_value_{n}", text)
        clauses.append(f"(name = {param(f'score_name_{n}', True)} AND {c.column} {c.op} {value})")
        params[f"score_name_{n}"] = c.name
        params[f"score_value_{n}"] = c.value if text else float(c.value)
    return (" OR ".join(clauses) or "false"), params


def base_rate_test(rate: float, low_bits: str) -> str:
    """OpenTelemetry's TraceIdRatioBased as SQL: `low_bits` (a trace id's low 64 bits as an
    unsigned integer, in the store's SQL) below rate * 2**64."""
    if rate >= 1.0:
        return "true"
    if rate <= 0.0:
        return "false"
    return f"{low_bits} < {int(rate * 2**64)}"


def keeps_by_base_rate(trace_id: str, rate: float) -> bool:
    """`base_rate_test` in Python (for callers and tests that check a trace's fate)."""
    return rate >= 1.0 or (rate > 0.0 and int(trace_id[16:32], 16) < int(rate * 2**64))


def keep_case(policy: SamplingPolicy, tests: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The CASE branches that give a trace's reason to be kept under `policy`, first met in
    KEEP_REASONS order (a store's SQL test for each reason in `tests`, over a trace row `t`),
    and the parameters they use: cost, tenants, users."""
    on = {
        "error": policy.keep_errors,
        "cost": policy.keep_cost_above_usd is not None,
        "slow": policy.keep_slower_than_percentile is not None,
        "score": bool(policy.keep_scores),
        "alert": policy.keep_alerted,
        "tenant": bool(policy.keep_tenants),
        "user": bool(policy.keep_users),
        "base_rate": True,
    }
    params: dict[str, Any] = {}
    if on["cost"]:
        params["cost"] = policy.keep_cost_above_usd
    if on["tenant"]:
        params["tenants"] = list(policy.keep_tenants)
    if on["user"]:
        params["users"] = list(policy.keep_users)
    case = " ".join(f"WHEN {tests[reason]} THEN '{reason}'" for reason in KEEP_REASONS if on[reason])
    return case, params


@dataclass(frozen=True)
class Project:
    project_id: str
    created_at: datetime


#: A project's data, and the column that dates each row: retention deletes what is older than
#: its cutoff by it (None: kept until the project is deleted). `content` is the DuckDB name; the
#: ClickHouse store keeps content as `content_parts`.
DATED = (
    ("spans", "start_time"),
    ("content", "start_time"),
    ("scores", "created_at"),
    ("rollup_minute", "minute"),
    ("rollup_user_hour", "hour"),
    ("retained_traces", "decided_at"),
    ("alert_events", "created_at"),
)
UNDATED = ("alert_states", "alert_rules", "sampling_policies", "api_keys", "projects")


def retention_cutoff(now: datetime, keep: timedelta) -> datetime:
    """The instant before which retention deletes: `keep` back from now, down to the hour, so
    the minute and hour rollups end where the spans do."""
    return (now - keep).astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class Store(Protocol):
    """An engine that holds canonical spans, their content and the projects."""

    # --- lifecycle and writes --------------------------------------------------------
    def spool_position(self) -> tuple[int, int] | None:
        """The spool position covered by the last committed write, or None."""

    def write_batch(self, tables: Tables, spool_position: tuple[int, int] | None) -> int:
        """Insert spans (a repeated identity is ignored), merge content (parts of one span's
        content may arrive apart), upsert scores and record the spool position, atomically.
        Returns how many spans were new."""

    def update_costs(self, project_id: str, costs: pa.Table) -> int:
        """Set cost_usd, cost_known and attributes of the spans named by (trace_id, span_id)."""

    def advance_rollups(self, until: datetime) -> datetime:
        """Roll up every bucket (of each canonical.GRAINS) that ends by `until` and is not yet
        rolled up; the new per-minute mark. Buckets before a mark stay exact: a write that
        changes their spans recomputes them."""

    def apply_sampling(self, project_id: str, policy: SamplingPolicy, now: datetime) -> pa.Table:
        """Judge the project's traces whose newest span is `policy.recent` old (and those open
        `policy.max_open`) once every rollup holds them; list the kept, drop the detail of the
        others (their numbers stay in the rollups). The verdicts: trace_id, started, spans,
        has_error, cost_usd, duration_ms, root_name, detail_bytes, kept_because (None: dropped)."""

    def simulate_sampling(
        self, project_id: str, policy: SamplingPolicy, since: datetime, until: datetime
    ) -> pa.Table:
        """The verdicts `apply_sampling` would give every stored trace with a span in the range,
        judged now; changes nothing."""

    def put_sampling_policy(self, project_id: str, spec: str | None) -> None:
        """Store (JSON) or, with None, remove the project's policy set through the API."""

    def sampling_policies(self) -> dict[str, str]:
        """The policies set through the API, by project (JSON)."""

    def retained_because(self, project_id: str, trace_id: str) -> str | None:
        """Why a judged trace kept its detail; None if it was not judged (or not kept)."""

    def rolled_up_until(self, grain: Grain = MINUTE) -> datetime | None:
        """Every bucket of `grain` before this is in its rollups; None before the first
        `advance_rollups`."""

    def close(self) -> None: ...

    def delete_before(self, cutoff: datetime) -> dict[str, int]:
        """Retention: delete every project's rows dated before `cutoff` (see DATED), spans,
        content and their rollups alike; rows deleted per table."""

    # --- projects --------------------------------------------------------------------
    def create_project(self, project_id: str, key_hash: str) -> None: ...

    def delete_project(self, project_id: str) -> dict[str, int]:
        """The project, its keys and every row of its data; rows deleted per table."""

    def add_key(self, project_id: str, key_hash: str) -> None: ...

    def project_for_key(self, key_hash: str) -> str | None: ...

    def projects(self) -> list[Project]: ...

    # --- alerts ----------------------------------------------------------------------
    def put_alert_rule(self, project_id: str, name: str, spec: str) -> None:
        """Add or replace a rule made through the API (`spec` is its JSON)."""

    def delete_alert_rule(self, project_id: str, name: str) -> bool: ...

    def alert_rules(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        """(project_id, name, spec) of the API's rules, of one project or all."""

    def alert_states(self, project_id: str) -> list[dict[str, Any]]:
        """Each (rule, group_key) not at rest: status, value, active_since, fired_at,
        resolved_at, evaluated_at (aware UTC datetimes)."""

    def save_alert_evaluation(
        self,
        project_id: str,
        states: list[dict[str, Any]],
        cleared: list[tuple[str, str]],
        events: list[dict[str, Any]],
    ) -> None:
        """Atomically: upsert `states`, delete the `cleared` (rule, group_key) states and record
        the notifications owed (`events`: event_id, rule, group_key, status, at, payload)."""

    def alert_events(
        self, project_id: str | None = None, undelivered: bool = False, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Notifications, newest first (oldest first when only the undelivered)."""

    def mark_alert_event(self, event_id: str, delivered: bool, error: str | None = None) -> None:
        """Count a delivery attempt; `delivered` settles the notification."""

    # --- reads -----------------------------------------------------------------------
    def spans(self, f: SpanFilter, columns: tuple[str, ...], limit: int | None = None) -> pa.Table:
        """Matching spans, oldest first."""

    def trace_spans(self, project_id: str, trace_id: str) -> pa.Table:
        """Every span of a trace (canonical fields), oldest first."""

    def content(self, project_id: str, trace_id: str, span_id: str) -> dict[str, Any] | None: ...

    def trace_summaries(self, f: TraceFilter, limit: int, offset: int) -> pa.Table:
        """One row per qualifying trace, newest first: trace_id, start_time, end_time,
        duration_ms, spans, root_name, status, error_types, models, tokens, cost, tags."""

    def session_summaries(self, f: SpanFilter, limit: int, offset: int) -> pa.Table:
        """The sessions with spans matching `f`, most recently active first, each summed over
        all its spans: traces, LLM calls, errors, tokens, cost, first and last time, user and
        tenant."""

    def scores(self, project_id: str, trace_id: str) -> pa.Table:
        """Every score of a trace and of its spans, oldest first."""

    def score_summary(self, f: SpanFilter, group_by: tuple[str, ...], name: str | None) -> pa.Table:
        """Per score name, data type and group (tags of the scored span, or of the trace's root
        span for a trace-level score): count, mean, min and max of the value, and the count of
        each label. Scores are placed in time by the span they score."""

    def aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, distinct: bool = True
    ) -> pa.Table:
        """Per group (and time bucket): requests (LLM calls), answered (not failed), spans,
        traces, tokens by kind, cost, errors (and errors_<type> for each error type), unpriced
        spans, retries (spans with retry_attempt > 0) with their tokens and cost, http_resends
        (retries below an LLM call: an SDK's own retry loop), truncated and streamed calls,
        distinct sessions and users, first and last start time. Duplicates (duplicate_of set)
        are never counted. Without `distinct`, traces, sessions and users are NULL: exact
        distinct counts cost about half the scan, and per-bucket rows that are summed later
        cannot use them."""

    def quantiles(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        quantiles: tuple[float, ...],
        bucket_seconds: int | None = None,
    ) -> pa.Table:
        """Per group (and time bucket, oldest first): count and the quantiles of each measure
        over LLM calls."""

    def rollup_aggregate(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None, grain: Grain = MINUTE
    ) -> pa.Table:
        """`aggregate` without distinct counts, from the rollups of `grain`: `f` covers whole
        buckets before `rolled_up_until(grain)`, filters and groups by the grain's keys only,
        and `bucket_seconds` is a multiple of its width."""

    def sketch(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        measure: str,
        bucket_seconds: int | None,
        from_rollups: bool,
    ) -> pa.Table:
        """Per group (and time bucket): the latency sketch of `measure` over LLM calls as
        (sketch_index, count) rows (tokentrace/sketch.py), merged from the rollups' sketches or
        computed from the spans with the same buckets (the rollups' limits apply to both)."""

    def histogram(
        self, f: SpanFilter, group_by: tuple[str, ...], measure: str, bounds: tuple[float, ...]
    ) -> pa.Table:
        """Per group, over LLM calls that have `measure` (duration_ms, ttft_ms, tpot_ms,
        input_tokens, output_tokens): count, sum, and le_<n>, the count at or below bounds[n]."""

    def totals(self, project_id: str) -> dict[str, Any]:
        """Cheap whole-project counts: spans, traces, tokens, cost, unpriced spans, newest span."""

    def export(self, f: SpanFilter, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Every matching span with exactly the canonical fields, oldest first."""
