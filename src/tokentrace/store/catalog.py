"""What a store holds per project, and what retention deletes by date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


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
    ("record_tags", "start_time"),
    ("scores", "created_at"),
    ("rollup_minute", "minute"),
    ("rollup_hour", "hour"),
    ("rollup_model_hour", "hour"),
    ("rollup_user_hour", "hour"),
    ("rollup_user_day", "day"),
    ("retained_traces", "decided_at"),
    ("sampled_calls", "start_time"),
    ("alert_events", "created_at"),
    ("evaluations", "updated_at"),
)
UNDATED = ("alert_states", "alert_rules", "evaluator_specs", "sampling_policies", "api_keys", "projects")


def retention_cutoff(now: datetime, keep: timedelta) -> datetime:
    """The instant before which retention deletes: `keep` back from now, down to the hour, so
    the minute and hour rollups end where the spans do."""
    return (now - keep).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
