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
                        "mapping": {"a": 1, "b": ["x", None], "c": {"d": 0.5}},  # the SDK keeps these
                        "nothing": None,  # and None, as an empty value
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


def test_spans_encoded_as_they_end_reach_the_endpoint_whole(monkeypatch):
    """The gateway's processor: bytes written at span end, joined into requests by the exporter;
    a span the direct encoder cannot write goes through the official one, nothing lost."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from tokentrace.sdk import batching
    from tokentrace.sdk.exporter import DirectOTLPSpanExporter

    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    real = batching.encode_span

    def encode_but_not_tools(span):
        if span.name == "tool":
            raise ValueError("an attribute the direct encoder does not know")
        return real(span)

    monkeypatch.setattr(batching, "encode_span", encode_but_not_tools)
    exporter = DirectOTLPSpanExporter(endpoint=f"http://127.0.0.1:{server.server_address[1]}/v1/traces")
    processor = batching.EncodingSpanProcessor(exporter, schedule_delay_ms=60_000)
    spans = _spans()
    for span in spans:
        processor.on_end(span)
    assert processor.force_flush(10_000)
    processor.shutdown()
    server.shutdown()

    def by_id(request) -> dict[str, dict]:
        found = {}
        for resource in MessageToDict(request)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    where = {"scope": scope["scope"], "resource": resource["resource"]}
                    found[span["spanId"]] = {"span": span, **where}
        return found

    sent: dict[str, dict] = {}
    for body in bodies:
        sent |= by_id(ExportTraceServiceRequest.FromString(body))
    assert len(bodies) == 2  # the encoded spans, and the tool spans through the official path
    assert sent == by_id(official(spans))
