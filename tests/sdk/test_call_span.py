"""tokentrace's own span for LLM calls (`sdk/call_span.py`) against the OTel SDK span it stands
in for: the same operations give the same exported span, and it is used only where they would."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from tokentrace.sdk import call_span
from tokentrace.sdk.batching import BatchingSpanProcessor
from tokentrace.sdk.call_span import CallSpan
from tokentrace.sdk.otlp_encode import encode_span
from tokentrace.sdk.tags import TagSpanProcessor
from tokentrace.sdk.tags import context as tags

START = {  # what start_call() gives a chat call's span
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.request.top_p": 0.9,
    "gen_ai.request.seed": 7,
    "gen_ai.request.stream": True,
}


class Pipeline:
    """A provider set up as `init()` sets it up, exporting to memory."""

    def __init__(self, **provider_options) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "eq"}), **provider_options)
        self.tags = TagSpanProcessor()
        self.batcher = BatchingSpanProcessor(self.exporter)
        self.provider.add_span_processor(self.tags)
        self.provider.add_span_processor(self.batcher)
        call_span.configure(self.provider, self.tags, self.batcher)

    def spans(self) -> list[ReadableSpan]:
        self.batcher.force_flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    made = Pipeline()
    yield made
    call_span.unconfigure()
    made.provider.shutdown()


def _exercise(span: trace.Span) -> None:
    """Everything the instrumentation (and an app's hook) may do to a call's span."""
    span.set_attributes({"gen_ai.usage.input_tokens": 120, "gen_ai.response.finish_reasons": ["stop"]})
    span.set_attribute("gen_ai.response.id", "chatcmpl-1")
    span.set_attribute("tokentrace.ttft_ms", 12.5)
    span.set_attribute("gen_ai.request.model", "gpt-4o")  # overwritten
    span.set_attribute("app.mapping", {"a": 1, "b": [1, 2]})  # kept, as the SDK keeps it
    span.set_attribute("app.bytes", b"\x00\x01")
    span.set_attribute("", "dropped: an empty key")
    span.update_name("chat gpt-4o")
    span.set_status(Status(StatusCode.ERROR, "first"))
    span.set_status(StatusCode.UNSET)  # changes nothing
    span.set_status(StatusCode.ERROR, "second")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        span.record_exception(exc, attributes={"app.retry": 1}, timestamp=1_700_000_000_000_000_000)
    span.add_event("app.event", {"n": [1, 2, 3]}, timestamp=1_700_000_000_000_000_001)
    link = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    span.add_link(link, {"why": "batch"})
    span.add_link(SpanContext(0, 0, False), {"invalid": True})  # kept: it has attributes
    span.add_link(SpanContext(0, 0, False))  # not: an invalid context and nothing else
    span.end()
    span.set_attribute("after.end", 1)  # ignored once ended
    span.set_status(StatusCode.OK)
    span.end()  # a second end changes nothing


def _view(span: ReadableSpan) -> dict:
    """What an exporter reads of a span, ids and times left out."""
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": span.parent.span_id if span.parent else None,
        "remote_parent": span.parent.is_remote if span.parent else None,
        "trace_state": span.context.trace_state.to_header(),
        "sampled": span.context.trace_flags.sampled,
        "attributes": dict(span.attributes),
        "dropped_attributes": span.dropped_attributes,
        "events": [(e.name, dict(e.attributes), e.timestamp) for e in span.events],
        "links": [(link.context, dict(link.attributes)) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "resource": dict(span.resource.attributes),
        "scope": (span.instrumentation_scope.name, span.instrumentation_scope.version),
    }


def _both(pipeline: Pipeline) -> tuple[ReadableSpan, ReadableSpan, trace.Span]:
    """The same call's span made both ways under the same parent, with the same tags."""
    parent = SpanContext(
        0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("v", "1")])
    )
    ctx = baggage.set_baggage("not.a.tag", "x", trace.set_span_in_context(NonRecordingSpan(parent)))
    token = context.attach(ctx)
    try:
        with tags(tenant_id="acme", feature="refund-chat"):
            ours = call_span.start("chat gpt-4o-mini", dict(START))
            theirs = pipeline.provider.get_tracer(call_span.SCOPE).start_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=dict(START)
            )
    finally:
        context.detach(token)
    assert type(ours) is CallSpan and type(theirs) is not CallSpan
    _exercise(ours)
    _exercise(theirs)
    mine, sdk = pipeline.spans()  # in the order they ended
    return mine, sdk, ours


def test_a_call_span_exports_what_the_sdk_span_exports(pipeline):
    ours, theirs, _ = _both(pipeline)
    mine, sdk = _view(ours), _view(theirs)
    for view in (mine, sdk):  # the same exception, recorded from different frames
        exception = next(attributes for name, attributes, _ in view["events"] if name == "exception")
        assert "ValueError: boom" in exception.pop("exception.stacktrace")
    assert mine == sdk
    assert mine["attributes"]["tenant.id"] == "acme" and "not.a.tag" not in mine["attributes"]
    assert mine["attributes"]["gen_ai.response.finish_reasons"] == ("stop",)
    assert mine["status"] == (StatusCode.ERROR, "second")
    assert mine["dropped_attributes"] == 1
    assert ours.context.trace_id == theirs.context.trace_id == 0x1234


def test_the_direct_encoder_writes_a_call_span_as_its_readable_span(pipeline):
    """The SDK's exporter encodes CallSpans as they are (no ReadableSpan made): the same bytes."""
    _, _, span = _both(pipeline)
    assert encode_span(span).data == encode_span(span.readable()).data


def test_attributes_past_the_limit_drop_the_oldest_as_the_sdk_does(pipeline):
    ours = call_span.start("chat", dict(START))
    theirs = pipeline.provider.get_tracer(call_span.SCOPE).start_span(
        "chat", kind=SpanKind.CLIENT, attributes=dict(START)
    )
    many = {f"app.{n}": n for n in range(200)}
    for span in (ours, theirs):
        span.set_attributes(many)
        span.end()
    spans = pipeline.spans()
    assert [dict(s.attributes) for s in spans[:1]] == [dict(s.attributes) for s in spans[1:]]
    assert (
        len(spans[0].attributes) == 128 and spans[0].dropped_attributes == spans[1].dropped_attributes == 78
    )


def test_an_unsampled_parent_gets_no_recording_span(pipeline):
    parent = NonRecordingSpan(SpanContext(0x1, 0x2, is_remote=True, trace_flags=TraceFlags(0)))
    token = context.attach(trace.set_span_in_context(parent))
    try:
        span = call_span.start("chat", dict(START))
    finally:
        context.detach(token)
    assert not isinstance(span, CallSpan) and not span.is_recording()


def test_another_processor_on_the_provider_means_sdk_spans_again(pipeline):
    assert isinstance(call_span.start("chat", dict(START)), CallSpan)
    pipeline.provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert not isinstance(call_span.start("chat", dict(START)), CallSpan)


def test_a_provider_joined_with_a_processor_of_the_apps_keeps_sdk_spans():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    tags, batcher = TagSpanProcessor(), BatchingSpanProcessor(InMemorySpanExporter())
    provider.add_span_processor(tags)
    provider.add_span_processor(batcher)
    call_span.configure(provider, tags, batcher)
    try:
        assert not isinstance(call_span.start("chat", dict(START)), CallSpan)
    finally:
        call_span.unconfigure()
        provider.shutdown()


@pytest.mark.parametrize(
    "options",
    [
        {"sampler": sampling.ParentBased(sampling.TraceIdRatioBased(0.5))},
        {"sampler": sampling.ALWAYS_ON},
        {"span_limits": SpanLimits(max_span_attributes=10)},
        {"span_limits": SpanLimits(max_span_attribute_length=100)},
        {"span_limits": SpanLimits(max_events=500)},
    ],
    ids=["ratio-sampler", "always-on-ignores-parent", "fewer-attributes", "value-length", "more-events"],
)
def test_a_provider_set_up_otherwise_keeps_sdk_spans(options):
    made = Pipeline(**options)
    try:
        assert not isinstance(call_span.start("chat", dict(START)), CallSpan)
    finally:
        call_span.unconfigure()
        made.provider.shutdown()


def test_an_app_hook_setting_a_bad_value_loses_nothing_else(pipeline, caplog):
    """A value no exporter can write is cleaned as the SDK cleans it (replaced by None, with a
    warning), a key that is not a string dropped and counted; the span and its other
    attributes are exported."""
    span = call_span.start("chat", dict(START))
    with caplog.at_level(logging.WARNING):
        span.set_attribute("app.object", object())
        span.set_attributes({"app.ok": 1, 3: "a key that is not a string"})
    span.end()
    [exported] = pipeline.spans()
    assert (
        exported.attributes["app.ok"] == 1
        and exported.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    )
    assert exported.attributes["app.object"] is None  # as the SDK keeps it: an empty OTLP value
    assert 3 not in exported.attributes and exported.dropped_attributes == 1
    assert encode_span(exported).data == encode_span(span).data
    assert "Invalid type" in caplog.text and "invalid key" in caplog.text
