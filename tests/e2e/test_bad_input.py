"""Bad input gets a clear error and loses nothing else: each case with its expected answer."""

from __future__ import annotations

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.builders.otlp import chat, json_body, new_trace_id, protobuf, span


def _good() -> dict:
    return chat(new_trace_id(), input_tokens=10, output_tokens=2)


def test_truncated_protobuf_is_400_and_stores_nothing(server):
    body = protobuf([_good(), _good()])
    response = server.post_traces(body[: len(body) // 2])
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    assert b"not a valid OTLP protobuf" in response.content
    assert server.get("/api/v1/stats")["spans"] == 0


def test_invalid_json_is_400(server):
    response = server.post_traces(b'{"resourceSpans": [', content_type="application/json")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_wrong_content_type_is_415(server):
    response = server.post_traces(b"hello", content_type="text/plain")
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["message"]


def test_body_over_the_limit_is_413(start_server):
    srv = start_server("--max-body-mb", "0.001")  # ~1 KB
    big = protobuf([span(new_trace_id(), attributes={"blob": "x" * 4000})])
    assert srv.post_traces(big).status_code == 413
    assert srv.post_traces(protobuf([_good()])).status_code == 200
    import gzip

    bomb = gzip.compress(b"\0" * 5_000_000)  # small on the wire, huge inflated
    response = srv.post_traces(bomb, **{"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_invalid_spans_are_rejected_alone_in_protobuf(server):
    trace_id = new_trace_id()
    good = [_good(), _good()]
    bad_ids = span(trace_id, span_id="00000000000000ab") | {"trace_id": "ab" * 8}  # 8-byte trace id
    zero_id = span(trace_id, span_id="0" * 16)
    reversed_times = span(trace_id)
    reversed_times["end"] = reversed_times["start"] - 1
    negative = chat(trace_id, input_tokens=-5, output_tokens=1)
    text_tokens = chat(trace_id, input_tokens="many", output_tokens=1)
    response = server.post_traces(
        protobuf([good[0], bad_ids, zero_id, reversed_times, negative, text_tokens, good[1]])
    )
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 5
    message = answer.partial_success.error_message
    for reason in (
        "trace id",
        "all zeros",
        "before start",
        "non-negative integer, got -5",
        "non-negative integer, got 'many'",
    ):
        assert reason in message
    assert server.wait_for_spans(2)["spans"] == 2


def test_invalid_spans_are_rejected_alone_in_json(server):
    good = _good()
    doc = json_body([good, span(new_trace_id())])
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["spanId"] = "not-hex-at-all!!"
    spans.append({"traceId": 5})  # wrong type
    response = server.post_traces(orjson.dumps(doc), content_type="application/json")
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "span id" in partial["errorMessage"] and "traceId must be a hex string" in partial["errorMessage"]
    assert server.wait_for_spans(1)["spans"] == 1


def test_unknown_enum_values_and_odd_attributes_are_kept(server):
    trace_id = new_trace_id()
    weird = span(
        trace_id, kind=42, status_code=9, attributes={"nan": float("nan"), "deep": [[["x"]]], "big": 2**62}
    )
    response = server.post_traces(protobuf([weird]))
    assert response.status_code == 200
    server.wait_for_spans(1)
    [row] = server.get(f"/api/v1/traces/{trace_id}")["roots"]
    assert row["kind"] == "unspecified" and row["status"] == "unset"
    assert row["attributes"]["nan"] is None and row["attributes"]["deep"] == [[["x"]]]
