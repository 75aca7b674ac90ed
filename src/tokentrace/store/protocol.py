"""What ingest writes and query/ reads, independent of the engine: one small protocol per
concern, so each consumer names only what it uses, and `Store`, every one of them.

query/ decides what to compute; a store only knows how to run it on its engine. Column
names passed in (group-by, measures) are canonical field names, validated by query/ and
again by the store before they reach SQL; values always travel as parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import pyarrow as pa

from tokentrace.canonical import MINUTE, Grain, Tables
from tokentrace.store.catalog import Project
from tokentrace.store.filters import SpanFilter, TraceFilter
from tokentrace.store.sampling import SamplingPolicy

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


class SpanWriter(Protocol):
    """Writes: spans, their content and scores, costs set after the fact, and retention's deletes."""

    def spool_position(self) -> tuple[int, int] | None:
        """The spool position covered by the last committed write, or None."""

    def write_batch(self, tables: Tables, spool_position: tuple[int, int] | None) -> int:
        """Insert spans (a repeated identity is ignored), merge content (parts of one span's
        content may arrive apart), upsert scores and record the spool position, atomically.
        Returns how many spans were new."""

    def update_costs(self, project_id: str, costs: pa.Table) -> int:
        """Set cost_usd, cost_known, deployment and attributes of the spans named by (trace_id,
        span_id), the columns of `costs`; how many spans were found."""

    def delete_before(self, cutoff: datetime) -> dict[str, int]:
        """Retention: delete every project's rows dated before `cutoff` (see DATED), spans,
        content and their rollups alike; rows deleted per table."""

    def compact(self) -> None:
        """Merge the part-filled pieces writes leave and reclaim what deletes freed; the server
        calls it hourly. DuckDB: a checkpoint that vacuums, which writes' own checkpoints skip
        (its cost grew with the table). ClickHouse merges its parts by itself; it deletes
        the rollups' superseded versions."""


class SpanReader(Protocol):
    """Reads over spans (and the rollups that stand in for them): lists, traces, sessions, scores and
    the aggregates query/ builds its answers from."""

    def spans(self, f: SpanFilter, columns: tuple[str, ...], limit: int | None = None) -> pa.Table:
        """Matching spans, oldest first."""

    def llm_calls(self, f: SpanFilter, columns: tuple[str, ...]) -> pa.Table:
        """The matching LLM calls that count (no duplicate of another span), in no set order
        (sorting a week of calls took half the read), with `sampled_out`: true for the calls of
        traces tail sampling dropped (kept in sampled_calls without their spans), and
        `trace_key`: a 64-bit hash of the trace id (uint64), to group calls by trace without
        reading its text. `columns` are canonical.SAMPLED_CALL_FIELDS."""

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

    def session_starts(self, project_id: str, session_id: str) -> tuple[datetime, datetime] | None:
        """The start times a session's spans fall in (since, until exclusive; it may hold more),
        where the store keeps them; None where knowing would take a scan of the spans."""

    def scores(self, project_id: str, trace_id: str) -> pa.Table:
        """Every score of a trace and of its spans, oldest first."""

    def session_scores(self, project_id: str, session_id: str) -> pa.Table:
        """Every score given to a session (not to its traces), oldest first."""

    def score_summary(
        self,
        f: SpanFilter,
        group_by: tuple[str, ...],
        name: str | None,
        beyond: tuple[str, float] | None = None,
        bucket_seconds: int | None = None,
    ) -> pa.Table:
        """Per score name, data type and group (tags of the scored span, or of the trace's root
        span for a trace-level score; first the time `bucket` when `bucket_seconds` is given):
        count, mean, min and max of the value, the count of each label, and (`beyond`: ("<" or
        ">", value)) how many values lie past that bound. Scores are placed in time by the span
        they score."""

    def score_means_by_trace(self, f: SpanFilter, names: tuple[str, ...]) -> pa.Table:
        """Per trace and score name (of `names`): trace_id, name and the mean of its numeric or
        boolean values, over the scores of the spans `f` selects (a trace-level score by its root)."""

    def lowest_scores(self, f: SpanFilter, name: str, limit: int) -> pa.Table:
        """The `limit` lowest numeric or boolean scores named `name` of the spans `f` selects (lowest first,
        then the newest): trace_id, span_id, value, label (string_value), comment, source,
        start_time, and the scored span's feature, prompt_version and request_model; session_id for
        a session's score."""

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

    def distinct_counts(
        self, f: SpanFilter, group_by: tuple[str, ...], bucket_seconds: int | None
    ) -> pa.Table:
        """Per group (and time bucket): the distinct traces, sessions and users of its counted
        spans (duplicates excluded), as `aggregate` counts them, and nothing else: what a read
        from the rollups adds from spans, in a scan of four columns, not all of them."""

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
        parts: Sequence[tuple[Grain | None, SpanFilter]],
        group_by: tuple[str, ...],
        measures: tuple[str, ...],
        bucket_seconds: int | None,
    ) -> pa.Table:
        """Per measure of `measures` and group (and time bucket): the latency sketch of that
        measure over LLM calls (tokentrace/sketch.py) as the lists `sketch_index` and `count`,
        with the measure named in a `measure` column, over the parts of a range: each the
        sketches of a grain's rollups over its filter, or (None) computed from the spans with the
        same buckets (the limits of `rollup_aggregate` apply to both). One query for all the
        measures. A group may come in several rows and its buckets in any order, repeated:
        query/ merges them (query.rollups.quantiles)."""

    def histogram(
        self, f: SpanFilter, group_by: tuple[str, ...], measure: str, bounds: tuple[float, ...]
    ) -> pa.Table:
        """Per group, over LLM calls that have `measure` (duration_ms, ttft_ms, tpot_ms,
        input_tokens, output_tokens): count, sum, and le_<n>, the count at or below bounds[n]."""

    def totals(self, project_id: str) -> dict[str, Any]:
        """Cheap whole-project counts: spans, traces, tokens, cost, unpriced spans, newest span."""

    def export(self, f: SpanFilter, batch_rows: int = 10_000) -> Iterator[pa.RecordBatch]:
        """Every matching span with exactly the canonical fields, oldest first."""


class Rollups(Protocol):
    """The per-minute and per-hour rollups kept beside the spans: how far they reach."""

    def advance_rollups(self, until: datetime) -> datetime:
        """Roll up every bucket (of each canonical.GRAINS) that ends by `until` and is not yet
        rolled up; the new per-minute mark. Buckets before a mark stay exact: a write that
        changes their spans recomputes them."""

    def rolled_up_until(self, grain: Grain = MINUTE) -> datetime | None:
        """Every bucket of `grain` before this is in its rollups; None before the first
        `advance_rollups`."""


class Sampling(Protocol):
    """Tail sampling: verdicts on finished traces, and the policies set through the API."""

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


class Deployments(Protocol):
    """The calls self-hosted deployments served (spans with `deployment` set), across projects:
    what the amortize job splits each hour's cost over."""

    def deployment_usage(self, name: str, since: datetime, until: datetime) -> pa.Table:
        """Per UTC hour with calls of deployment `name` (`hour`: its start, epoch seconds):
        calls and tokens (input + output) of the counted calls (no duplicates), their cost,
        `unsettled` spans (duplicates too) whose share is not final, `pending` ones with no share
        yet, and the tokens of the hour's busiest minute."""

    def deployment_calls(self, name: str, since: datetime, until: datetime) -> pa.Table:
        """Every span of deployment `name` in the range: project_id, trace_id, span_id, tokens
        (input + output), counted (not a duplicate), cost_usd, attributes."""


class EvaluationQueue(Protocol):
    """What evaluators owe (store/evaluation_fields.py): queued once per (project, evaluator,
    version, span), due until settled, so a restart neither loses nor repeats an evaluation."""

    def queue_evaluations(self, items: list[dict[str, Any]], now: datetime) -> int:
        """Queue each item (its key and `due_at`) not queued before, in any state; how many were new."""

    def due_evaluations(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """At most `limit` queued evaluations due by `now`, the longest due first."""

    def settle_evaluations(self, items: list[dict[str, Any]]) -> None:
        """Write each item's state, attempts, due_at, error, updated_at and cost_usd (by its key)."""

    def evaluation_spend(self, since: datetime) -> dict[tuple[str, str], float]:
        """Per project and evaluator, what the evaluator's judge calls cost in the evaluations
        settled since `since` (Evaluator.spent sums what one evaluator's budget counts)."""

    def evaluation_states(self, project_id: str) -> dict[str, dict[str, int]]:
        """Per evaluator, how many of the project's queued evaluations are in each state."""

    def evaluation_list(self, project_id: str, state: str | None, limit: int) -> list[dict[str, Any]]:
        """The project's queued evaluations (of one state, or all), the latest settled first."""

    def put_evaluator(self, project_id: str, name: str, spec: str) -> None:
        """Add or replace an evaluator of the project (its spec, JSON) from the API."""

    def delete_evaluator(self, project_id: str, name: str) -> bool:
        """Remove an evaluator added through the API; whether there was one."""

    def evaluator_specs(self, project_id: str | None = None) -> list[tuple[str, str, str]]:
        """(project_id, name, spec) of the evaluators added through the API (one project's, or
        every project's)."""


class Leases(Protocol):
    """Which node runs a job that must run on one node at a time (evaluating, alerting, sampling
    sweeps) when several share a store."""

    def hold_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Whether `holder` holds the lease `name` until `now + ttl`: taken when no one else holds
        it unexpired, renewed when it is already `holder`'s."""


class Catalog(Protocol):
    """Projects and their API keys."""

    def create_project(self, project_id: str, key_hash: str) -> None: ...

    def delete_project(self, project_id: str) -> dict[str, int]:
        """The project, its keys and every row of its data; rows deleted per table."""

    def add_key(self, project_id: str, key_hash: str) -> None: ...

    def project_for_key(self, key_hash: str) -> str | None: ...

    def projects(self) -> list[Project]: ...


class AlertLog(Protocol):
    """The API's alert rules, the evaluator's state and the notifications owed."""

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


class Store(
    SpanWriter,
    SpanReader,
    Rollups,
    Sampling,
    Deployments,
    EvaluationQueue,
    Leases,
    Catalog,
    AlertLog,
    Protocol,
):
    """An engine that holds canonical spans, their content and the projects: every concern."""

    def close(self) -> None: ...
