"""The SDK's direct OTLP encoder writes what the official encoder writes, field for field."""

from __future__ import annotations

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tokentrace.sdk.otlp_encode import encode_spans


def _spans():
    memory = InMemorySpanExporter()
    spans = []
    for service in ("api", "worker"):  # two resources in one batch
        provider = TracerProvider(resource=Resource.create({"service.name": service, "n": 3}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        ours, other = provider.get_tracer("tokentrace", "0.1"), provider.get_tracer("app")
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
        with ours.start_as_current_span(
            "request", context=trace.set_span_in_context(trace.NonRecordingSpan(remote)), kind=SpanKind.SERVER
        ):
            for i in range(3):
                with ours.start_as_current_span(
                    "chat gpt-4o",
                    kind=SpanKind.CLIENT,
                    links=[Link(remote, {"why": "retry of"})],
                    attributes={
                        "gen_ai.provider.name": "openai",
                        "gen_ai.usage.input_tokens": 100 + i,
                        "flag": i % 2 == 0,
                        "one": 1,  # equal to True as a dict key: must stay an int
                        "negative": -5,
                        "big": 2**62,
                        "ratio": 0.25,
                        "reasons": ["stop", "length"],
                        "counts": [1, 2],
                        "raw": b"\x00\xff",
                        "text": "héllo ✓ " * (i * 40),  # past the cache's size limit when long
                    },
                ) as span:
                    span.add_event("exception", {"exception.type": "RateLimitError", "n": i})
                    if i == 0:
                        span.set_status(Status(StatusCode.ERROR, "429 from provider"))
                    elif i == 1:
                        span.set_status(Status(StatusCode.OK))
                with other.start_as_current_span("tool", kind=SpanKind.INTERNAL):
                    pass
        spans += memory.get_finished_spans()
        memory.clear()
    return spans


def test_direct_encoding_equals_the_official_encoder():
    spans = _spans()
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert MessageToDict(ours) == MessageToDict(official(spans))
    # and again, now from the attribute cache
    assert encode_spans(spans) == encode_spans(spans)
    assert MessageToDict(ExportTraceServiceRequest.FromString(encode_spans(spans))) == MessageToDict(
        official(spans)
    )


def test_empty_batch_is_an_empty_request():
    assert encode_spans([]) == b""
