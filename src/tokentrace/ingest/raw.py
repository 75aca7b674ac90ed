"""The decoded OTLP span, before normalization: what both wire formats decode into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPAN_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUS_CODES = ("unset", "ok", "error")


class DecodeError(ValueError):
    """The whole request body cannot be read (answered 400)."""


class SpanRejected(ValueError):
    """One span is invalid; it is rejected alone (OTLP partial success)."""


@dataclass(slots=True)
class RawEvent:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class RawSpan:
    trace_id: str  # lowercase hex as received; validated by the normalizer
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_unix_nano: int
    end_unix_nano: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str = ""
    scope_version: str = ""
    events: list[RawEvent] = field(default_factory=list)


@dataclass(slots=True)
class RawLogRecord:
    """A decoded OTLP log record (an event when it has an event name)."""

    trace_id: str  # lowercase hex, "" when the record has no span context
    span_id: str
    time_unix_nano: int
    observed_time_unix_nano: int
    event_name: str
    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope_name: str = ""
