"""The gateway's span records: what they send is what the OTel SDK would send for the same span,
and the caller's traceparent is honoured, whatever its sampled flag, or ignored when malformed."""

from __future__ import annotations

import time

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tokentrace.proxy.spans import SCOPE, SpanSink, parse_traceparent
from tokentrace.sdk.otlp_encode import EncodedSpan, request_body

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def _as_dict(body: bytes) -> dict:
    return MessageToDict(ExportTraceServiceRequest.FromString(body))


def test_gateway_span_bytes_equal_the_official_encoding_of_the_same_span():
    sink = SpanSink("http://127.0.0.1:9", "tokentrace-proxy")
    try:
        span = sink.start(
            "chat gpt-4o-mini",
            PARENT,
            "vendor=abc",
            time.time_ns(),
            {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.request.stop_sequences": ["\n"]},
        )
        span.set_attributes({"gen_ai.usage.input_tokens": 31, "gen_ai.response.id": None, "ratio": 0.5})
        span.record_exception(TimeoutError("upstream slow"))
        span.fail("timeout", "upstream timeout")
        span.end_ns = span.start_ns + 5_000_000
        ours = request_body([EncodedSpan.of(sink.resource, SCOPE, span.message())])
        theirs = official([span.readable(sink.resource)]).SerializeToString()
        assert _as_dict(ours) == _as_dict(theirs)
        sent = _as_dict(ours)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        assert sent["status"] == {"code": "STATUS_CODE_ERROR", "message": "upstream timeout"}
        assert "gen_ai.response.id" not in {a["key"] for a in sent["attributes"]}  # None is no value
        assert sent["events"][0]["name"] == "exception"
    finally:
        sink.shutdown()


def test_the_callers_trace_is_joined_even_when_it_did_not_sample():
    sink = SpanSink("http://127.0.0.1:9", "tokentrace-proxy")
    try:
        span = sink.start("chat m", PARENT, None, time.time_ns(), {})
        assert span.trace_id_hex == "0af7651916cd43dd8448eb211c80319c"
        assert span.parent_span_id == 0xB7AD6B7169203331
        # The upstream hears the caller's flags; the gateway records the call regardless: spend
        # is never sampled away.
        assert span.traceparent() == f"00-{span.trace_id_hex}-{span.span_id:016x}-00"
        fresh = sink.start("chat m", None, None, time.time_ns(), {})
        assert fresh.parent_span_id is None and fresh.trace_id != span.trace_id
        assert fresh.traceparent().endswith("-01")
    finally:
        sink.shutdown()


def test_malformed_traceparents_start_a_trace_of_their_own():
    assert parse_traceparent(PARENT.upper()) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, 0)
    for bad in (
        None,
        "",
        "garbage",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # all-zero span id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",  # short span id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff is invalid
        "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",
    ):
        assert parse_traceparent(bad) is None, bad
