"""OTLP/JSON decoding: the protobuf JSON mapping, both key spellings, per-span rejection."""

from __future__ import annotations

import orjson
import pytest

from tokentrace.ingest.otlp_json import decode_traces
from tokentrace.ingest.raw import DecodeError


def _doc(spans: list, resource_attrs: list | None = None) -> bytes:
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": resource_attrs or []},
                    "scopeSpans": [{"scope": {"name": "s", "version": "1"}, "spans": spans}],
                }
            ]
        }
    )


SPAN = {
    "traceId": "5B8EFFF798038103D269B633813FC60C",
    "spanId": "EEE19B7EC3C1B174",
    "name": "x",
    "kind": 3,
    "startTimeUnixNano": "1700000000000000000",
    "endTimeUnixNano": 1700000000500000000,
    "attributes": [
        {"key": "a", "value": {"intValue": "42"}},
        {"key": "b", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"doubleValue": "NaN"}]}}},
        {"key": "c", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}}},
        {"key": "d", "value": {"bytesValue": "AQI="}},
    ],
    "status": {"code": 2, "message": "boom"},
}


def test_decodes_the_json_mapping():
    [span], errors = decode_traces(_doc([SPAN]))
    assert errors == []
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"  # hex, lowercased
    assert span.start_unix_nano == 1700000000000000000 and span.end_unix_nano == 1700000000500000000
    assert span.attributes["a"] == 42 and span.attributes["b"][0] == "x"
    assert span.attributes["c"] == {"k": True} and span.attributes["d"] == "0102"
    assert (span.status_code, span.status_message, span.scope_name) == (2, "boom", "s")


def test_snake_case_keys_are_accepted():
    snake = {
        "trace_id": SPAN["traceId"],
        "span_id": SPAN["spanId"],
        "start_time_unix_nano": 5,
        "end_time_unix_nano": 6,
    }
    [span], _ = decode_traces(_doc([snake]))
    assert span.start_unix_nano == 5


def test_a_malformed_span_is_rejected_alone():
    bad = dict(SPAN, attributes=[{"key": "a", "value": {"intValue": "forty"}}])
    spans, errors = decode_traces(_doc([SPAN, bad, "not an object"]))
    assert len(spans) == 1 and len(errors) == 2
    assert "intValue must be an integer" in errors[0] and "span must be an object" in errors[1]


def test_deep_nesting_is_rejected_not_a_crash():
    value: dict = {"stringValue": "leaf"}
    for _ in range(70):  # past our 64-level limit, within orjson's own 255
        value = {"arrayValue": {"values": [value]}}
    spans, errors = decode_traces(_doc([dict(SPAN, attributes=[{"key": "deep", "value": value}])]))
    assert spans == [] and "nested deeper" in errors[0]


@pytest.mark.parametrize("body", [b"[1,2]", b"nope", b'{"resourceSpans": 3}'])
def test_structural_errors_fail_the_request(body):
    with pytest.raises(DecodeError):
        decode_traces(body)
