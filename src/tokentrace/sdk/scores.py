"""`tokentrace.score()`: attach human feedback or an evaluator's verdict to a trace, a span, or a
whole session.

A score travels as an OTLP log record, the GenAI `gen_ai.evaluation.result` event, so the
SDK keeps speaking OTLP only; the server stores it with the trace's other scores.
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

_DATA_TYPES = ("numeric", "boolean", "categorical")


@dataclass(frozen=True)
class Destination:
    endpoint: str  # the OTLP/HTTP logs URL
    headers: dict[str, str] | None
    resource: Resource


_destination: Destination | None = None
_logs: LoggerProvider | None = None
_lock = threading.Lock()


def configure(destination: Destination | None) -> None:
    """Where scores go (set by init()); nothing starts until the first score."""
    global _destination
    _destination = destination


def _logger_provider() -> LoggerProvider:
    # Made on first use: an app that never scores pays no exporter thread for it.
    global _logs
    with _lock:
        if _logs is None:
            if _destination is None:
                raise RuntimeError("call tokentrace.init() before tokentrace.score()")
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            provider = LoggerProvider(resource=_destination.resource)
            exporter = OTLPLogExporter(endpoint=_destination.endpoint, headers=_destination.headers)
            provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
            _logs = provider
        return _logs


def flush(timeout_ms: int) -> bool:
    """Export pending scores; True when there were none or all went out."""
    return _logs.force_flush(timeout_ms) if _logs is not None else True


def shutdown() -> None:
    global _logs, _destination
    with _lock:
        if _logs is not None:
            _logs.shutdown()
        _logs, _destination = None, None


def _attributes(name: str, value: Any, data_type: str | None) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a score needs a name")
    if data_type is not None and data_type not in _DATA_TYPES:
        raise ValueError(f"data_type must be one of {_DATA_TYPES}")
    attrs: dict[str, Any] = {"gen_ai.evaluation.name": name}
    if isinstance(value, bool):
        attrs["gen_ai.evaluation.score.value"] = 1.0 if value else 0.0
        attrs["gen_ai.evaluation.score.label"] = "true" if value else "false"
        data_type = data_type or "boolean"
    elif isinstance(value, int | float) and math.isfinite(value):
        attrs["gen_ai.evaluation.score.value"] = float(value)
    elif isinstance(value, str) and value:
        attrs["gen_ai.evaluation.score.label"] = value
        data_type = data_type or "categorical"
    else:
        raise ValueError(f"a score value is a finite number, True/False or a label, not {value!r}")
    if data_type:
        attrs["tokentrace.score.data_type"] = data_type
    return attrs


def score(
    name: str,
    value: float | bool | str,
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    comment: str | None = None,
    data_type: str | None = None,
    score_id: str | None = None,
    session_id: str | None = None,
) -> str:
    """Score a trace (by default the current one) or one of its spans, or with `session_id` a
    whole session (no trace needed: a conversation rated at its end); returns the score's id.

    `value` is a number, True/False, or a label ("billing", "good"). Sending the same
    `score_id` again replaces the score (a user changing their feedback).
    """
    attrs = _attributes(name, value, data_type)
    if session_id is not None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("session_id is a non-empty string")
        attrs["tokentrace.score.session_id"] = session_id
        span_id = None  # a session's score is no span's
    if trace_id is None and session_id is None:
        current = trace.get_current_span().get_span_context()
        if not current.is_valid:
            raise ValueError("no trace to score: pass trace_id, or call score() inside a traced span")
        trace_id, span_id = f"{current.trace_id:032x}", span_id or f"{current.span_id:016x}"
    try:
        trace_number = int(trace_id, 16) if trace_id else 0
        span_number = int(span_id, 16) if span_id else 0
    except ValueError as exc:
        raise ValueError("trace_id and span_id are hex strings") from exc
    score_id = score_id or uuid.uuid4().hex
    attrs["tokentrace.score.id"] = score_id
    attrs["tokentrace.score.source"] = "sdk"
    if comment is not None:
        attrs["gen_ai.evaluation.explanation"] = comment
    logs = _logger_provider()
    scored = SpanContext(
        trace_number, span_number, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
    )
    logs.get_logger("tokentrace.sdk").emit(
        event_name="gen_ai.evaluation.result",
        attributes=attrs,
        context=trace.set_span_in_context(NonRecordingSpan(scored)),
    )
    return score_id
