"""The gateway's spans: one per call, exported over OTLP like the SDK's, joined to the client's trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tokentrace.sdk.batching import EncodingSpanProcessor
from tokentrace.sdk.exporter import DirectOTLPSpanExporter

_propagator = TraceContextTextMapPropagator()


class SpanSink:
    """A tracer provider of the gateway's own (never the global one), batching to OTLP/HTTP; spans
    are encoded as they end, so the export thread never holds the event loop back for long."""

    def __init__(
        self,
        endpoint: str,
        service_name: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.processor = EncodingSpanProcessor(
            DirectOTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {})),
            schedule_delay_ms=1000,
        )
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("tokentrace.proxy")

    def start(
        self,
        name: str,
        traceparent: str | None,
        tracestate: str | None,
        start_ns: int,
        attributes: dict[str, Any],
    ) -> Span:
        """A client span started at `start_ns`, the child of the caller's span when it sent one."""
        parent: Context | None = None
        if traceparent:
            carrier = {"traceparent": traceparent}
            if tracestate:
                carrier["tracestate"] = tracestate
            parent = _propagator.extract(carrier)
        return self.tracer.start_span(
            name, context=parent, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns
        )

    def flush(self, timeout_s: float = 10) -> bool:
        return self.processor.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()


def traceparent_of(span: Span) -> dict[str, str]:
    """The headers that make the upstream call a child of `span`."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=set_span_in_context(span))
    return carrier
