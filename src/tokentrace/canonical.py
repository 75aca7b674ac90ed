"""The canonical span: the one row shape every part of tokentrace shares.

Every convention is normalized into these fields (ARCHITECTURE.md, "The canonical span").
The stores, the REST API and `tokentrace export` use exactly these names and this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa

_NS = pa.timestamp("ns")

#: (name, Arrow type) in canonical order.
FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("project_id", pa.string()),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("parent_span_id", pa.string()),
    ("name", pa.string()),
    ("kind", pa.string()),
    ("operation", pa.string()),
    ("start_time", _NS),
    ("end_time", _NS),
    ("duration_ms", pa.float64()),
    ("status", pa.string()),
    ("status_message", pa.string()),
    ("error_type", pa.string()),
    ("service_name", pa.string()),
    ("service_version", pa.string()),
    ("environment", pa.string()),
    ("provider", pa.string()),
    ("request_model", pa.string()),
    ("response_model", pa.string()),
    # How the call was served and billed: the provider's tier (default, flex, priority, scale,
    # standard) or batch; the answered tier where the response says it, else the one requested.
    ("service_tier", pa.string()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("total_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()),
    ("cache_write_tokens", pa.int64()),
    ("reasoning_tokens", pa.int64()),
    # Tokens by modality, each a part of the count above it (audio input tokens are input
    # tokens; cached audio tokens are cached input tokens too), priced at their own rates.
    ("input_audio_tokens", pa.int64()),
    ("output_audio_tokens", pa.int64()),
    ("cache_audio_read_tokens", pa.int64()),
    ("input_image_tokens", pa.int64()),
    ("output_image_tokens", pa.int64()),
    ("cache_image_read_tokens", pa.int64()),
    ("cost_usd", pa.float64()),
    ("cost_known", pa.bool_()),
    # The self-hosted deployment (prices file, [[deployments]]) that served the call: its cost
    # is a share of the deployment's hour, set after the fact (jobs/amortize.py).
    ("deployment", pa.string()),
    ("finish_reason", pa.string()),
    ("temperature", pa.float64()),
    ("max_tokens", pa.int64()),
    ("top_p", pa.float64()),
    ("seed", pa.int64()),
    ("streaming", pa.bool_()),
    ("ttft_ms", pa.float64()),
    ("tpot_ms", pa.float64()),
    ("user_id", pa.string()),
    ("session_id", pa.string()),
    ("tenant_id", pa.string()),
    ("feature", pa.string()),
    ("prompt_template", pa.string()),
    ("prompt_version", pa.string()),
    ("request_id", pa.string()),
    ("response_id", pa.string()),  # the provider's id of its answer: how duplicates are recognized
    ("retry_attempt", pa.int64()),
    ("duplicate_of", pa.string()),
    ("tool_name", pa.string()),
    ("agent_name", pa.string()),
    ("data_source", pa.string()),
    ("attributes", pa.string()),  # JSON object
    ("resource", pa.string()),  # JSON object
)

FIELD_NAMES: tuple[str, ...] = tuple(name for name, _ in FIELDS)
SPAN_SCHEMA = pa.schema(FIELDS)

#: Costs set after the fact (repricing, a deployment's hour split): Store.update_costs' table.
COST_UPDATE_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("cost_usd", pa.float64()),
        ("cost_known", pa.bool_()),
        ("deployment", pa.string()),
        ("attributes", pa.string()),
    ]
)

#: The attribution tags: inherited from ancestors, filterable, groupable.
TAG_FIELDS = (
    "user_id",
    "session_id",
    "tenant_id",
    "feature",
    "prompt_template",
    "prompt_version",
)
#: Message content, stored apart from the span row (never scanned by analytics), with
#: the tags a span's log records carry (lent to the span: some libraries put them only there).
CONTENT_SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("start_time", _NS),
        ("system_instructions", pa.string()),  # JSON
        ("input_messages", pa.string()),  # JSON
        ("output_messages", pa.string()),  # JSON
        ("events", pa.string()),  # JSON list of {name, time_unix_nano, attributes}
        *((tag, pa.string()) for tag in TAG_FIELDS),
    ]
)
CONTENT_FIELD_NAMES: tuple[str, ...] = tuple(CONTENT_SCHEMA.names)

#: Scores (human feedback, evaluator verdicts, ingest rule checks), keyed like content.
#: A trace-level score has an empty span_id. Identity is (project_id, score_id): a score
#: sent again with the same id replaces the old one.
SCORE_SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("score_id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("name", pa.string()),
        ("data_type", pa.string()),  # numeric, boolean, categorical
        ("value", pa.float64()),  # numeric value; 1/0 for boolean; optional for categorical
        ("string_value", pa.string()),  # the label of a categorical score, "true"/"false" for boolean
        ("comment", pa.string()),
        ("source", pa.string()),  # api, sdk, eval, rule
        ("created_at", _NS),
        # A session's score: the session it judges (trace_id is then the session's trace it was
        # given at, whose tags and time it is counted by; '' when none was named).
        ("session_id", pa.string()),
    ]
)
SCORE_FIELD_NAMES: tuple[str, ...] = tuple(SCORE_SCHEMA.names)
SCORE_DATA_TYPES = ("numeric", "boolean", "categorical")
#: The score a person gives a trace from its page (thumbs up true, down false; source "human"),
#: and the label they may add (categorical): what evaluators' verdicts are checked against.
HUMAN_SCORE = "human"
HUMAN_LABEL = "human_label"


@dataclass(frozen=True)
class Tables:
    """What one ingest request adds to the store: canonical spans, their content, scores."""

    spans: pa.Table
    content: pa.Table
    scores: pa.Table

    @property
    def rows(self) -> int:
        return self.spans.num_rows + self.content.num_rows + self.scores.num_rows

    @property
    def nbytes(self) -> int:
        """Memory the three tables hold: their Arrow buffers whole (Table.nbytes walks every
        column's offsets to count only the sliced part: ~0.5 µs a span on the server's path)."""
        return (
            self.spans.get_total_buffer_size()
            + self.content.get_total_buffer_size()
            + self.scores.get_total_buffer_size()
        )

    @staticmethod
    def concat(parts: list[Tables]) -> Tables:
        return Tables(
            pa.concat_tables([p.spans for p in parts]),
            pa.concat_tables([p.content for p in parts]),
            pa.concat_tables([p.scores for p in parts]),
        )


OPERATIONS = (
    "chat",
    "text_completion",
    "embeddings",
    "execute_tool",
    "invoke_agent",
    "invoke_workflow",
    "retrieval",
    "other",
)
#: Operations that are calls to a model: the only spans that add requests, tokens and cost to a
#: total. Others that report usage (an agent run's or a workflow's totals of its children) keep
#: it in attributes (`tokentrace.subtotal.*`), for display only.
LLM_OPERATIONS = ("chat", "text_completion", "embeddings")
ERROR_TYPES = (
    "rate_limit",
    "context_length",
    "timeout",
    "server_error",
    "auth",
    "content_filter",
    "bad_request",
    "budget",  # refused by a tokentrace budget (the gateway's 429)
    "cancelled",  # the client went away before the answer ended
    "other",
)
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "error", "other")

#: What a span takes from its nearest ancestor that has it: the tags, and the agent it runs in
#: (an LLM call or tool inside an agent's run is that agent's: cost by agent sums its calls).
INHERITED_FIELDS = (*TAG_FIELDS, "agent_name")
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)

#: Audio and image tokens: parts of the input, output and cached counts (TOKEN_FIELDS), kept on
#: spans and priced at their own rates; the rollups sum the counts they are part of.
MODALITY_TOKEN_FIELDS = (
    "input_audio_tokens",
    "output_audio_tokens",
    "cache_audio_read_tokens",
    "input_image_tokens",
    "output_image_tokens",
    "cache_image_read_tokens",
)

#: Fields computed from others (see input_bucket): groupable and filterable, not stored.
DERIVED_FIELDS = frozenset({"input_bucket"})

#: Fields a rollup may group by: low-cardinality descriptive columns.
GROUPABLE_FIELDS = frozenset(
    {
        "name",
        "kind",
        "operation",
        "status",
        "error_type",
        "service_name",
        "service_version",
        "environment",
        "provider",
        "request_model",
        "response_model",
        "service_tier",
        "finish_reason",
        "streaming",
        "tool_name",
        "agent_name",
        "data_source",
        "trace_id",
        "input_bucket",
        *TAG_FIELDS,
    }
)

#: What tail sampling keeps of each counted LLM call of a trace it drops (table sampled_calls):
#: what triage reads of a call and every field a read may hold it to, not its text. Triage then
#: finds the same causes on a sampled store (users, sessions, retries inside a request and
#: latency per slice need calls, not rollup rows): ~48 bytes a call on disk (docs/benchmarks.md).
SAMPLED_CALL_FIELDS = (
    "project_id",
    "trace_id",
    "start_time",
    "duration_ms",
    *TOKEN_FIELDS,
    "cost_usd",
    *sorted(GROUPABLE_FIELDS - DERIVED_FIELDS - {"trace_id"}),
)

#: What per-minute rollups are keyed by (with project and minute): every low-cardinality
#: attribution of spend. Users, sessions and traces are not: their cardinality is unbounded.
ROLLUP_KEYS = (
    "service_name",
    "environment",
    "provider",
    "request_model",
    "response_model",
    "operation",
    "tenant_id",
    "feature",
    "prompt_template",
    "prompt_version",
    "status",
    "error_type",
)
#: What hourly per-model rollups are keyed by: the keys of a latency or model-mix dashboard,
#: so a month of them by model is a few thousand rows (the hourly rows by every key are ~100k).
MODEL_ROLLUP_KEYS = (
    "environment",
    "provider",
    "request_model",
    "response_model",
    "operation",
    "status",
    "error_type",
)
#: What each rollup row sums (with TOKEN_FIELDS): LLM calls, spans, cost, unpriced spans,
#: retries and SDK resends with their tokens and cost, truncated and streamed calls.
ROLLUP_COUNTS = (
    "requests",
    "spans",
    *TOKEN_FIELDS,
    "cost_usd",
    "unpriced_spans",
    "retries",
    "http_resends",
    "retry_tokens",
    "retry_cost_usd",
    "truncated",
    "streamed",
)
#: The measures rollups keep a latency sketch of (tokentrace/sketch.py), over LLM calls.
SKETCHED_MEASURES = ("duration_ms", "ttft_ms", "tpot_ms")
#: What hourly per-user rollups are keyed by (with project and hour): users are unbounded, so
#: they get the coarser grain and only the keys that say whose spend it was and how it ended.
USER_ROLLUP_KEYS = ("tenant_id", "user_id", "status", "error_type")


@dataclass(frozen=True)
class Grain:
    """One rollup table: its time column and width, the keys it is kept by, whether it keeps
    latency sketches, and the key a recompute narrows to besides project and bucket (an hour of
    spans is large, and a late span changes the totals of its own user only)."""

    table: str
    time_column: str
    seconds: int
    keys: tuple[str, ...]
    sketched: bool
    narrowed_by: str | None = None
    #: The finer grain this one is summed from, by its keys or fewer (None: from spans). A late
    #: span then recomputes its minute from spans and its hour from sixty minute rows, not from
    #: an hour of spans; a read takes whole hours (days) from here and the edges from there.
    rolled_from: Grain | None = None

    def floor(self, t: datetime) -> datetime:
        """The start of the bucket `t` falls in (whole minutes, hours and days of UTC)."""
        into = (t.hour * 3600 + t.minute * 60 + t.second) % self.seconds
        return t - timedelta(seconds=into, microseconds=t.microsecond)


MINUTE = Grain("rollup_minute", "minute", 60, ROLLUP_KEYS, sketched=True)
HOUR = Grain("rollup_hour", "hour", 3600, ROLLUP_KEYS, sketched=True, rolled_from=MINUTE)
MODEL_HOUR = Grain("rollup_model_hour", "hour", 3600, MODEL_ROLLUP_KEYS, sketched=True, rolled_from=HOUR)
USER_HOUR = Grain("rollup_user_hour", "hour", 3600, USER_ROLLUP_KEYS, sketched=False, narrowed_by="user_id")
USER_DAY = Grain(
    "rollup_user_day",
    "day",
    86400,
    USER_ROLLUP_KEYS,
    sketched=False,
    narrowed_by="user_id",
    rolled_from=USER_HOUR,
)
#: Rollup tables in the order they are built (a table after the one it is summed from) and a
#: read tries them: the finest that holds what it asks, then its coarser copies for whole buckets.
GRAINS = (MINUTE, HOUR, MODEL_HOUR, USER_HOUR, USER_DAY)
#: The tables rolled up from spans. Tail sampling judges only the traces before every one of
#: their marks and freezes a dropped trace's numbers into them; a table summed from a finer one
#: sums its sampled-out rows with the rest, so sampling never waits for a day to close.
FROM_SPANS = tuple(g for g in GRAINS if g.rolled_from is None)

#: Input-length buckets latency is broken down by: (upper bound exclusive, label); the last
#: bucket has no bound. `input_bucket` is a derived field: groupable and filterable, not stored.
INPUT_BUCKETS: tuple[tuple[int | None, str], ...] = (
    (1000, "<1k"),
    (4000, "1k-4k"),
    (16000, "4k-16k"),
    (None, ">16k"),
)


def input_bucket(tokens: int | None) -> str | None:
    """The input-length bucket of a call with this many input tokens."""
    if tokens is None:
        return None
    for bound, label in INPUT_BUCKETS:
        if bound is None or tokens < bound:
            return label
    raise AssertionError("the last input bucket has no bound")
