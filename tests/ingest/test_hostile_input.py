"""Hostile input through ingest's request path (decode → normalize → price → redact → spool
record): anything a client sends ends as accepted spans, rejected spans with a reason, or a
DecodeError (answered 400). Nothing else escapes (that would be a 500), nothing hangs (each
example has a deadline), and whatever is accepted survives the spool record's round trip.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2

from tokentrace.ingest.pipeline import Pipeline
from tokentrace.ingest.prepare import JSON, PROTOBUF, Prepared
from tokentrace.ingest.raw import DecodeError
from tokentrace.ingest.record import decode_record, encode_record
from tokentrace.pricing import PriceBook
from tokentrace.store.duckdb import DuckDBStore

HOSTILE = settings(
    max_examples=100,
    deadline=timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    store = DuckDBStore(root / "store.duckdb")
    pipe = Pipeline(store, PriceBook(), root / "spool")
    yield pipe
    pipe.close()
    store.close()


def _survives(prepared: Prepared) -> None:
    """Accepted rows are well-formed enough to spool and read back unchanged."""
    tables = decode_record(encode_record(prepared.tables))
    assert tables.rows == prepared.tables.rows
    assert prepared.rejected == len(prepared.errors)
    for cost in prepared.tables.spans.column("cost_usd").to_pylist():
        assert cost is None or (math.isfinite(cost) and cost >= 0)


def _try(prepare, body: bytes) -> None:
    try:
        prepared = prepare(body)
    except DecodeError:
        return
    _survives(prepared)


# --- protobuf -----------------------------------------------------------------------------
texts = st.text(max_size=40) | st.sampled_from(["gen_ai.request.model", "gen_ai.usage.input_tokens", ""])
scalars = st.one_of(
    st.builds(lambda s: common_pb2.AnyValue(string_value=s), texts),
    st.builds(lambda i: common_pb2.AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda d: common_pb2.AnyValue(double_value=d), st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda b: common_pb2.AnyValue(bool_value=b), st.booleans()),
    st.builds(lambda b: common_pb2.AnyValue(bytes_value=b), st.binary(max_size=16)),
    st.just(common_pb2.AnyValue()),
)


def _array(values: list) -> common_pb2.AnyValue:
    v = common_pb2.AnyValue()
    v.array_value.values.extend(values)
    return v


def _kvlist(pairs: list) -> common_pb2.AnyValue:
    v = common_pb2.AnyValue()
    v.kvlist_value.values.extend(common_pb2.KeyValue(key=k, value=x) for k, x in pairs)
    return v


any_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(_array) | st.lists(st.tuples(texts, inner), max_size=4).map(_kvlist)
    ),
    max_leaves=20,
)
ids = st.binary(max_size=20)  # right length (16, 8), wrong, or empty
nanos = st.integers(0, 2**64 - 1)
known_keys = st.sampled_from(
    [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.input.messages",
        "gen_ai.response.finish_reasons",
        "llm.token_count.prompt",
        "openinference.span.kind",
        "traceloop.span.kind",
        "langfuse.observation.type",
        "session.id",
        "user.id",
        "tenant.id",
    ]
)


@st.composite
def trace_requests(draw) -> bytes:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rs = request.resource_spans.add()
        for key, value in draw(st.lists(st.tuples(texts, any_values), max_size=3)):
            rs.resource.attributes.add(key=key, value=value)
        ss = rs.scope_spans.add()
        ss.scope.name = draw(texts)
        for _ in range(draw(st.integers(0, 4))):
            span = ss.spans.add(
                trace_id=draw(ids),
                span_id=draw(ids),
                parent_span_id=draw(ids),
                name=draw(texts),
                kind=draw(st.integers(-5, 50)),  # unknown enum values too
                start_time_unix_nano=draw(nanos),
                end_time_unix_nano=draw(nanos),
            )
            span.status.code = draw(st.integers(-3, 9))
            span.status.message = draw(texts)
            for key, value in draw(st.lists(st.tuples(known_keys | texts, any_values), max_size=8)):
                span.attributes.add(key=key, value=value)
            for _ in range(draw(st.integers(0, 2))):
                event = span.events.add(name=draw(texts), time_unix_nano=draw(nanos))
                for key, value in draw(st.lists(st.tuples(texts, any_values), max_size=3)):
                    event.attributes.add(key=key, value=value)
    return request.SerializeToString()


@HOSTILE
@given(body=trace_requests())
def test_any_protobuf_trace_request_is_accepted_or_rejected_per_span(pipeline, body):
    _survives(pipeline.preparer.protobuf("p", body))


@HOSTILE
@given(body=st.binary(max_size=2000))
def test_random_bytes_as_protobuf_are_a_decode_error_at_worst(pipeline, body):
    _try(lambda b: pipeline.preparer.protobuf("p", b), body)
    _try(lambda b: pipeline.preparer.export("p", b, PROTOBUF, "logs"), body)


@HOSTILE
@given(body=trace_requests(), cuts=st.lists(st.integers(0, 10_000), max_size=3), flips=st.binary(max_size=8))
def test_truncated_or_corrupted_protobuf_is_a_decode_error_at_worst(pipeline, body, cuts, flips):
    data = bytearray(body)
    for cut, flip in zip(cuts, flips, strict=False):
        if data:
            data[cut % len(data)] ^= flip or 0xFF
    _try(lambda b: pipeline.preparer.protobuf("p", b), bytes(data[: len(data) - len(cuts)]))


@st.composite
def log_requests(draw) -> bytes:
    request = ExportLogsServiceRequest()
    sl = request.resource_logs.add().scope_logs.add()
    for _ in range(draw(st.integers(0, 4))):
        record = sl.log_records.add(
            time_unix_nano=draw(nanos),
            trace_id=draw(ids),
            span_id=draw(ids),
            severity_number=draw(st.integers(-2, 40)),
            event_name=draw(st.sampled_from(["gen_ai.user.message", "gen_ai.evaluation.result", ""]) | texts),
        )
        record.body.CopyFrom(draw(any_values))
        for key, value in draw(st.lists(st.tuples(texts, any_values), max_size=4)):
            record.attributes.add(key=key, value=value)
    return request.SerializeToString()


@HOSTILE
@given(body=log_requests())
def test_any_protobuf_logs_request_is_accepted_or_rejected_per_record(pipeline, body):
    _survives(pipeline.preparer.export("p", body, PROTOBUF, "logs"))


# --- JSON ---------------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)


def _or_anything(strategy):
    """Mostly the right shape, sometimes any JSON at all in its place."""
    return st.one_of(strategy, strategy, strategy, json_values)


json_any_values = st.recursive(
    st.fixed_dictionaries({"stringValue": _or_anything(st.text(max_size=20))})
    | st.fixed_dictionaries({"intValue": _or_anything(st.integers(-(2**70), 2**70).map(str))})
    | st.fixed_dictionaries(
        {"doubleValue": _or_anything(st.sampled_from(["NaN", "Infinity", "-Infinity", 1e308]))}
    )
    | st.fixed_dictionaries({"bytesValue": _or_anything(st.text(max_size=8))}),
    lambda inner: (
        st.fixed_dictionaries({"arrayValue": st.fixed_dictionaries({"values": st.lists(inner, max_size=3)})})
        | st.fixed_dictionaries(
            {
                "kvlistValue": st.fixed_dictionaries(
                    {
                        "values": st.lists(
                            st.fixed_dictionaries({"key": st.text(max_size=8), "value": inner}), max_size=3
                        )
                    }
                )
            }
        )
    ),
    max_leaves=10,
)
json_attributes = st.lists(
    st.fixed_dictionaries({"key": _or_anything(known_keys | st.text(max_size=12)), "value": json_any_values}),
    max_size=6,
)
hexes = st.binary(max_size=18).map(bytes.hex) | st.text(max_size=34)
json_spans = st.fixed_dictionaries(
    {
        "traceId": _or_anything(hexes),
        "spanId": _or_anything(hexes),
        "name": _or_anything(st.text(max_size=20)),
        "kind": _or_anything(st.integers(-5, 50)),
        "startTimeUnixNano": _or_anything(nanos.map(str)),
        "endTimeUnixNano": _or_anything(nanos),
        "attributes": _or_anything(json_attributes),
        "status": _or_anything(st.fixed_dictionaries({"code": _or_anything(st.integers(-3, 9))})),
        "events": _or_anything(
            st.lists(
                st.fixed_dictionaries({"name": st.text(max_size=8), "attributes": json_attributes}),
                max_size=2,
            )
        ),
    }
)
json_documents = st.fixed_dictionaries(
    {
        "resourceSpans": _or_anything(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "resource": _or_anything(st.fixed_dictionaries({"attributes": json_attributes})),
                        "scopeSpans": _or_anything(
                            st.lists(
                                st.fixed_dictionaries(
                                    {"spans": _or_anything(st.lists(json_spans, max_size=4))}
                                ),
                                max_size=2,
                            )
                        ),
                    }
                ),
                max_size=2,
            )
        )
    }
)


@HOSTILE
@given(doc=json_documents | json_values)
def test_any_json_document_is_accepted_rejected_per_span_or_a_decode_error(pipeline, doc):
    body = json.dumps(doc).encode()  # the stdlib writes integers past 64 bits too
    _try(lambda b: pipeline.preparer.json("p", b), body)
    _try(lambda b: pipeline.preparer.export("p", b, JSON, "logs"), body)


@HOSTILE
@given(body=st.binary(max_size=500) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_bytes_that_are_not_json_or_not_utf8_are_a_decode_error(pipeline, body):
    _try(lambda b: pipeline.preparer.json("p", b), body)


# --- the sizes and shapes the issue names, once each --------------------------------------
def _one_span(attributes: list) -> bytes:
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(
            trace_id=b"\x01" * 16,
            span_id=b"\x02" * 8,
            name="chat",
            start_time_unix_nano=1,
            end_time_unix_nano=2,
        )
    )
    span.attributes.extend(attributes)
    return request.SerializeToString()


def test_a_megabyte_string_ten_thousand_attributes_nan_and_huge_numbers_are_kept(pipeline):
    big = [common_pb2.KeyValue(key="big", value=common_pb2.AnyValue(string_value="x" * 1_000_000))]
    many = [common_pb2.KeyValue(key=f"k{i}", value=common_pb2.AnyValue(int_value=i)) for i in range(10_000)]
    odd = [
        common_pb2.KeyValue(key="nan", value=common_pb2.AnyValue(double_value=math.nan)),
        common_pb2.KeyValue(key="gen_ai.usage.input_tokens", value=common_pb2.AnyValue(int_value=2**63 - 1)),
    ]
    prepared = pipeline.preparer.protobuf("p", _one_span(big + many + odd))
    _survives(prepared)
    assert prepared.accepted == 1
    attributes = orjson.loads(prepared.tables.spans.column("attributes")[0].as_py())
    assert len(attributes["big"]) == 1_000_000 and attributes["k9999"] == 9999
    assert prepared.tables.spans.column("input_tokens")[0].as_py() == 2**63 - 1


def test_a_token_count_that_is_not_a_count_rejects_its_span_with_the_reason(pipeline):
    for bad in (common_pb2.AnyValue(double_value=math.inf), common_pb2.AnyValue(int_value=-5)):
        prepared = pipeline.preparer.protobuf(
            "p", _one_span([common_pb2.KeyValue(key="gen_ai.usage.output_tokens", value=bad)])
        )
        assert prepared.accepted == 0
        assert "gen_ai.usage.output_tokens must be a non-negative integer" in prepared.errors[0]


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, encoded by hand (upb refuses to build what is nested
    past its limit, but a client may still send it)."""
    length, out = len(payload), bytearray()
    while True:
        out.append((length & 0x7F) | (0x80 if length > 0x7F else 0))
        length >>= 7
        if not length:
            break
    return bytes([number << 3 | 2]) + bytes(out) + payload


def test_deep_nesting_is_rejected_or_decode_error_never_a_crash(pipeline):
    value = common_pb2.AnyValue(string_value="leaf").SerializeToString()
    for _ in range(200):  # AnyValue.array_value (5) → ArrayValue.values (1): past upb's depth limit
        value = _field(5, _field(1, value))
    span = (
        _field(1, b"\x01" * 16)
        + _field(2, b"\x02" * 8)
        + _field(5, b"x")
        + _field(9, _field(1, b"deep") + _field(2, value))
    )
    body = _field(1, _field(2, _field(2, span)))  # resource_spans → scope_spans → spans
    with pytest.raises(DecodeError):
        pipeline.preparer.protobuf("p", body)

    json_value: dict = {"stringValue": "leaf"}
    for _ in range(100):  # past the JSON decoder's limit (64): that span alone is rejected
        json_value = {"arrayValue": {"values": [json_value]}}
    span = {
        "traceId": "01" * 16,
        "spanId": "02" * 8,
        "name": "x",
        "attributes": [{"key": "deep", "value": json_value}],
    }
    prepared = pipeline.preparer.json(
        "p", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
    )
    assert prepared.accepted == 0 and "deeper than 64" in prepared.errors[0]

    with pytest.raises(DecodeError):  # deeper than the JSON parser goes: the whole body is a 400
        pipeline.preparer.json("p", b'{"resourceSpans": ' + b"[" * 5000 + b"]" * 5000 + b"}")


def test_invalid_utf8_in_a_protobuf_string_is_a_decode_error(pipeline):
    body = bytearray(_one_span([common_pb2.KeyValue(key="k", value=common_pb2.AnyValue(string_value="ab"))]))
    at = body.index(b"ab")
    body[at : at + 2] = b"\xff\xfe"
    with pytest.raises(DecodeError):
        pipeline.preparer.protobuf("p", bytes(body))
