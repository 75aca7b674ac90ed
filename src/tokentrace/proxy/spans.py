"""The gateway's spans: one per call, joined to the client's trace, written as OTLP bytes when
the call ends and exported over OTLP/HTTP like the SDK's.

A gateway span is a plain record, not an OpenTelemetry SDK span: the SDK's span machinery
(context objects, attribute validation and locking, processors) cost ~60 µs a call on this
machine, and the gateway needs none of it: it never lends its span to other code, its
attributes are its own, and its parent comes from one header. What leaves is the same OTLP.
"""

from __future__ import annotations

import random
import re
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from tokentrace.sdk.batching import EncodingSpanProcessor
from tokentrace.sdk.exporter import DirectOTLPSpanExporter
from tokentrace.sdk.otlp_encode import EncodedSpan, span_message

SCOPE = ("tokentrace.proxy", None)
_CLIENT_KIND = SpanKind.CLIENT.value + 1  # OTLP numbers kinds from 1
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(slots=True)
class GatewaySpan:
    """One call as the gateway records it; `SpanSink.end` sends it."""

    name: str
    trace_id: int
    span_id: int
    parent_span_id: int | None
    trace_flags: int  # the caller's, passed on to the upstream; the gateway records every call
    trace_state: str
    start_ns: int
    attributes: dict[str, Any]
    error: str | None = None  # the status message of a failed call
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    end_ns: int = 0

    def set_attribute(self, key: str, value: Any) -> None:
        if value is not None:
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            if value is not None:
                self.attributes[key] = value

    def fail(self, error_type: str, message: str) -> None:
        """Mark the call failed: error.type and an error status (as the SDK's spans do)."""
        self.attributes["error.type"] = error_type
        self.error = message[:500]

    def record_exception(self, exc: BaseException) -> None:
        """An `exception` event, with the attributes OTel's record_exception writes."""
        self.events.append(
            (
                time.time_ns(),
                "exception",
                {
                    "exception.type": type(exc).__qualname__,
                    "exception.message": str(exc),
                    "exception.stacktrace": "".join(traceback.format_exception(exc)),
                    "exception.escaped": "False",
                },
            )
        )

    @property
    def trace_id_hex(self) -> str:
        return f"{self.trace_id:032x}"

    def traceparent(self) -> str:
        """The W3C traceparent that makes the upstream call a child of this span."""
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.trace_flags:02x}"

    def message(self) -> bytes:
        """The OTLP Span message."""
        return span_message(
            trace_id=self.trace_id,
            span_id=self.span_id,
            trace_state=self.trace_state,
            parent_span_id=self.parent_span_id,
            remote_parent=self.parent_span_id is not None,
            name=self.name,
            kind=_CLIENT_KIND,
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            attributes=self.attributes,
            events=self.events,
            status_code=StatusCode.ERROR.value if self.error is not None else 0,
            status_description=self.error,
        )

    def readable(self, resource: Resource) -> ReadableSpan:
        """The same span as the OTel SDK's ReadableSpan, for an exporter that cannot take bytes."""
        flags = TraceFlags(self.trace_flags)
        state = TraceState.from_header([self.trace_state]) if self.trace_state else None
        parent = (
            SpanContext(self.trace_id, self.parent_span_id, True, flags, state)
            if self.parent_span_id is not None
            else None
        )
        return ReadableSpan(
            name=self.name,
            context=SpanContext(self.trace_id, self.span_id, False, flags, state),
            parent=parent,
            resource=resource,
            attributes=self.attributes,
            events=[Event(name, attributes, timestamp) for timestamp, name, attributes in self.events],
            kind=SpanKind.CLIENT,
            instrumentation_scope=InstrumentationScope(*SCOPE),
            status=Status(StatusCode.ERROR, self.error) if self.error is not None else Status(),
            start_time=self.start_ns,
            end_time=self.end_ns,
        )


def parse_traceparent(value: str | None) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) from a W3C traceparent; None when absent or invalid
    (the call then starts a trace of its own, as the W3C spec asks)."""
    match = _TRACEPARENT.match(value.strip().lower()) if value else None
    if match is None:
        return None
    trace_id, span_id = int(match[1], 16), int(match[2], 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(match[3], 16)


class SpanSink:
    """Where the gateway's spans go: encoded as each call ends, batched, and exported over OTLP/HTTP
    from one thread, so export never holds the event loop back for long."""

    def __init__(self, endpoint: str, service_name: str, headers: Mapping[str, str] | None = None) -> None:
        self.resource = Resource.create({"service.name": service_name})
        self.exporter = DirectOTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}))
        self.processor = EncodingSpanProcessor(self.exporter, schedule_delay_ms=1000)

    def start(
        self,
        name: str,
        traceparent: str | None,
        tracestate: str | None,
        start_ns: int,
        attributes: dict[str, Any],
    ) -> GatewaySpan:
        """A client span started at `start_ns`, the child of the caller's span when it sent one."""
        parent = parse_traceparent(traceparent)
        span_id = random.getrandbits(64) or 1
        if parent is None:
            return GatewaySpan(name, random.getrandbits(128) or 1, span_id, None, 1, "", start_ns, attributes)
        trace_id, parent_span_id, flags = parent
        state = (tracestate or "").strip()
        if len(state) > 512:  # W3C's limit; longer is not a tracestate to pass on
            state = ""
        return GatewaySpan(name, trace_id, span_id, parent_span_id, flags, state, start_ns, attributes)

    def end(self, span: GatewaySpan) -> None:
        """End `span` now and queue it for export."""
        span.end_ns = time.time_ns()
        self.record(span)

    def record(self, span: GatewaySpan) -> None:
        """Queue `span` as it is, its end already set (a call the gateway learns of afterwards:
        a batch's result)."""
        if self.exporter.sends_bytes:
            self.processor.add(EncodedSpan.of(self.resource, SCOPE, span.message()))
        else:
            self.processor.add(span.readable(self.resource))

    def flush(self, timeout_s: float = 10) -> bool:
        return self.processor.force_flush(int(timeout_s * 1000))

    def counts(self) -> dict[str, int]:
        """Spans waiting to be sent, dropped because the queue was full, and not delivered (the
        trace endpoint refused them or did not answer through the exporter's retries)."""
        processor = self.processor
        return {"queued": processor.queued, "dropped": processor.dropped, "failed": processor.failed}

    def shutdown(self) -> None:
        self.processor.shutdown()
