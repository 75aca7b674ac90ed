"""OTLP log records → content and scores, joined to their span by trace and span id.

GenAI instrumentations send message content as events (log records) apart from the span:
the latest conventions as one `gen_ai.client.inference.operation.details` event carrying
gen_ai.input.messages / output.messages / system_instructions, the v1.36-and-earlier ones
as one event per message (gen_ai.user.message, gen_ai.choice, ...). Either may arrive
before or after its span; the store merges the parts by (project, trace, span).
`gen_ai.evaluation.result` events become scores (of a session, with `tokentrace.score.session_id`:
no trace needed). Attribution tags on a record (user, session,
tenant… under the same spellings as on spans) are its span's too: some libraries put them
only there, and the store lends them to the span whichever arrives first. A record outside
any span has nothing to join and is rejected with its reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tokentrace import semconv
from tokentrace.ingest.jsontext import dumps
from tokentrace.ingest.normalize import json_text
from tokentrace.ingest.normalize.fields import TAG_NAMES, fill_tags, is_id
from tokentrace.ingest.raw import RawLogRecord, SpanRejected
from tokentrace.ingest.score_rows import score_row


@dataclass
class LogBatch:
    content: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _event_name(record: RawLogRecord) -> str:
    # Before OTLP had a field for it, the SDKs put the event name in an attribute.
    return record.event_name or str(record.attributes.pop("event.name", "") or "")


def _score(record: RawLogRecord, project_id: str, when: int) -> dict[str, Any]:
    attrs = record.attributes
    name = attrs.get(semconv.EVALUATION_NAME)
    session_id = attrs.get(semconv.SCORE_SESSION_ID)
    trace_id = record.trace_id if session_id is None or is_id(record.trace_id, 32) else None
    span_id = record.span_id if session_id is None and is_id(record.span_id, 16) else None
    return score_row(
        project_id,
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        value=attrs.get(semconv.EVALUATION_SCORE),
        label=attrs.get(semconv.EVALUATION_LABEL),
        data_type=attrs.get(semconv.SCORE_DATA_TYPE),
        comment=attrs.get(semconv.EVALUATION_EXPLANATION),
        # An evaluator that names no id is identified by what it scored and when, so an
        # exporter retry does not score twice.
        score_id=attrs.get(semconv.SCORE_ID)
        or f"eval:{session_id or trace_id}:{span_id or ''}:{name}:{when}",
        source=str(attrs.get(semconv.SCORE_SOURCE) or "eval"),
        created_at_ns=when,
        session_id=session_id,
    )


def _content(record: RawLogRecord, project_id: str, name: str, when: int) -> dict[str, Any]:
    attrs = record.attributes
    system = attrs.pop(semconv.SYSTEM_INSTRUCTIONS, None)
    inputs = attrs.pop(semconv.INPUT_MESSAGES, None)
    outputs = attrs.pop(semconv.OUTPUT_MESSAGES, None)
    event: dict[str, Any] = {"name": name, "time_unix_nano": when, "attributes": attrs}
    if record.body is not None:
        event["body"] = record.body
    tags: dict[str, Any] = dict.fromkeys(TAG_NAMES)
    fill_tags(tags, attrs)
    fill_tags(tags, record.resource)
    return tags | {
        "project_id": project_id,
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "start_time": when,
        "system_instructions": json_text(system),
        "input_messages": json_text(inputs),
        "output_messages": json_text(outputs),
        "events": dumps([event]),
    }


def from_logs(records: list[RawLogRecord], project_id: str) -> LogBatch:
    """Content rows and scores of a decoded logs export; each bad record rejected alone."""
    batch = LogBatch()
    now = time.time_ns()
    for index, record in enumerate(records):
        try:
            name = _event_name(record)
            when = record.time_unix_nano or record.observed_time_unix_nano or now
            if name == semconv.EVALUATION_EVENT and semconv.SCORE_SESSION_ID in record.attributes:
                batch.scores.append(_score(record, project_id, when))  # a session's: no trace needed
                continue
            if not is_id(record.trace_id, 32):
                raise SpanRejected("has no trace id: only log records of a trace are kept")
            if name == semconv.EVALUATION_EVENT:
                batch.scores.append(_score(record, project_id, when))
                continue
            if not is_id(record.span_id, 16):
                raise SpanRejected("has no span id: only log records of a span are kept")
            batch.content.append(_content(record, project_id, name, when))
        except SpanRejected as exc:
            batch.errors.append(f"log record {index}: {exc}")
    return batch
