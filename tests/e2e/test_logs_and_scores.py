"""OTLP logs (content events, evaluation results) and scores, through a running server.

Log records are sent by the real OpenTelemetry SDK exporters (HTTP and gRPC); scores also
through POST /api/v1/scores; rule scores come from the spans themselves.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.builders.otlp import chat, new_span_id, new_trace_id, protobuf, span


def _logger(exporter):
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return provider, provider.get_logger("tests")


def _in_span(trace_id: str, span_id: str):
    ctx = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(ctx))


def _wait(fetch, check, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _span_content(server, trace_id, span_id):
    with server.client() as c:
        response = c.get(f"/api/v1/traces/{trace_id}/spans/{span_id}")
    return response.json() if response.status_code == 200 else None


def test_v136_message_events_arriving_before_their_span_are_joined_into_a_conversation(server):
    trace_id, span_id = new_trace_id(), new_span_id()
    provider, logger = _logger(OTLPLogExporter(endpoint=f"{server.url}/v1/logs"))
    context = _in_span(trace_id, span_id)
    logger.emit(event_name="gen_ai.system.message", body={"content": "Be brief."}, context=context)
    logger.emit(event_name="gen_ai.user.message", body={"content": "Refund order 42?"}, context=context)
    logger.emit(
        event_name="gen_ai.choice",
        body={"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Done."}},
        context=context,
    )
    provider.shutdown()
    # the span comes afterwards, carrying no content of its own
    server.post_traces(protobuf([chat(trace_id, input_tokens=12, output_tokens=3) | {"span_id": span_id}]))
    server.wait_for_spans(1)
    detail = _span_content(server, trace_id, span_id)
    content = detail["content"]
    assert content["system_instructions"] == [{"type": "text", "content": "Be brief."}]
    assert content["input_messages"] == [
        {"role": "user", "parts": [{"type": "text", "content": "Refund order 42?"}]}
    ]
    assert content["output_messages"] == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Done."}], "finish_reason": "stop"}
    ]
    assert [e["name"] for e in content["events"]] == [
        "gen_ai.system.message",
        "gen_ai.user.message",
        "gen_ai.choice",
    ]


def test_latest_operation_details_event_after_its_span_fills_the_message_lists_once(server):
    trace_id, span_id = new_trace_id(), new_span_id()
    server.post_traces(protobuf([chat(trace_id, input_tokens=5, output_tokens=2) | {"span_id": span_id}]))
    server.wait_for_spans(1)
    assert _span_content(server, trace_id, span_id)["content"] is None
    inputs = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    outputs = [
        {"role": "assistant", "parts": [{"type": "text", "content": "hello"}], "finish_reason": "stop"}
    ]
    exporter = OTLPLogExporter(endpoint=f"{server.url}/v1/logs")
    for _ in range(2):  # sent twice, as an exporter retry would: stored once
        provider, logger = _logger(exporter)
        logger.emit(
            event_name="gen_ai.client.inference.operation.details",
            attributes={
                "gen_ai.input.messages": orjson.dumps(inputs).decode(),
                "gen_ai.output.messages": orjson.dumps(outputs).decode(),
                "gen_ai.operation.name": "chat",
            },
            context=_in_span(trace_id, span_id),
            timestamp=1_700_000_000_000_000_000,
        )
        provider.force_flush()
    detail = _wait(lambda: _span_content(server, trace_id, span_id), lambda d: d and d["content"] is not None)
    content = detail["content"]
    assert content["input_messages"] == inputs and content["output_messages"] == outputs
    assert len(content["events"]) == 1 and "gen_ai.input.messages" not in content["events"][0]["attributes"]


def test_tags_only_on_a_log_record_are_the_spans_and_count_in_cost_by_tenant(server):
    # Some libraries set user and tenant on the event beside the call, not on its span.
    trace_id, span_id, tenant = new_trace_id(), new_span_id(), f"t-{new_span_id()}"
    server.post_traces(protobuf([chat(trace_id, input_tokens=40, output_tokens=4) | {"span_id": span_id}]))
    server.wait_for_spans(1)
    provider, logger = _logger(OTLPLogExporter(endpoint=f"{server.url}/v1/logs"))
    logger.emit(
        event_name="gen_ai.client.inference.operation.details",
        attributes={"tenant.id": tenant, "user.id": "u-logs", "gen_ai.operation.name": "chat"},
        context=_in_span(trace_id, span_id),
    )
    provider.shutdown()
    tree = _wait(lambda: server.get(f"/api/v1/traces/{trace_id}"), lambda t: t["roots"][0]["tenant_id"])
    [call] = tree["roots"]
    assert (call["tenant_id"], call["user_id"]) == (tenant, "u-logs")
    rows = server.get("/api/v1/rollups", since="24h", group_by="tenant_id")["rows"]
    [mine] = [r for r in rows if r["tenant_id"] == tenant]
    assert mine["requests"] == 1 and mine["input_tokens"] == 40


def test_evaluation_events_over_grpc_become_scores_of_their_span(server):
    trace_id, span_id = new_trace_id(), new_span_id()
    server.post_traces(protobuf([chat(trace_id, input_tokens=5, output_tokens=2) | {"span_id": span_id}]))
    server.wait_for_spans(1)
    exporter = GrpcLogExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True)
    provider, logger = _logger(exporter)
    logger.emit(
        event_name="gen_ai.evaluation.result",
        attributes={
            "gen_ai.evaluation.name": "relevance",
            "gen_ai.evaluation.score.value": 0.25,
            "gen_ai.evaluation.score.label": "irrelevant",
            "gen_ai.evaluation.explanation": "talks about shipping, asked about refunds",
        },
        context=_in_span(trace_id, span_id),
    )
    provider.shutdown()
    tree = _wait(lambda: server.get(f"/api/v1/traces/{trace_id}"), lambda t: t["scores"])
    [score] = tree["scores"]
    assert score["name"] == "relevance" and score["value"] == 0.25 and score["span_id"] == span_id
    assert score["data_type"] == "numeric" and score["string_value"] == "irrelevant"
    assert score["source"] == "eval" and score["comment"].startswith("talks about shipping")


def test_log_records_outside_any_span_are_rejected_alone(server):
    trace_id, span_id = new_trace_id(), new_span_id()

    def record(**ids):
        return {"timeUnixNano": str(time.time_ns()), "eventName": "gen_ai.user.message", **ids}

    body = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            record(),  # a plain app log: no trace
                            record(traceId=trace_id),  # a trace but no span
                            record(traceId=trace_id, spanId=span_id)
                            | {
                                "body": {
                                    "kvlistValue": {
                                        "values": [{"key": "content", "value": {"stringValue": "x"}}]
                                    }
                                }
                            },
                            "not a record",
                        ]
                    }
                ]
            }
        ]
    }
    with server.client() as c:
        response = c.post(
            "/v1/logs", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        garbage = c.post(
            "/v1/logs", content=b"\x00garbage", headers={"Content-Type": "application/x-protobuf"}
        )
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "3"
    assert "no trace id" in partial["errorMessage"] and "no span id" in partial["errorMessage"]
    assert garbage.status_code == 400
    server.post_traces(protobuf([span(trace_id, span_id=span_id)]))
    server.wait_for_spans(1)
    content = _span_content(server, trace_id, span_id)["content"]
    assert content["input_messages"] == [{"role": "user", "parts": [{"type": "text", "content": "x"}]}]


def _post_scores(server, payload, key=None) -> httpx.Response:
    with server.client(key) as c:
        return c.post(
            "/api/v1/scores", content=orjson.dumps(payload), headers={"Content-Type": "application/json"}
        )


def test_scores_api_types_rejections_replacement_filters_and_summaries(server):
    good, bad = new_trace_id(), new_trace_id()
    spans = []
    for trace_id, tenant in ((good, "acme"), (bad, "globex")):
        root = span(trace_id, name="request", attributes={"tenant.id": tenant})
        spans += [root, chat(trace_id, parent=root["span_id"], input_tokens=10, output_tokens=1)]
    server.post_traces(protobuf(spans))
    server.wait_for_spans(4)
    llm_span = spans[1]["span_id"]

    answer = _post_scores(
        server,
        [
            {"trace_id": good, "name": "helpful", "value": True, "comment": "user clicked thumbs up"},
            {"trace_id": bad, "name": "helpful", "value": False, "id": "fb-1"},
            {"trace_id": good, "span_id": llm_span, "name": "quality", "value": 0.9},
            {"trace_id": bad, "name": "topic", "value": "billing"},
            {"trace_id": "not-hex", "name": "helpful", "value": 1},  # rejected alone
            {"trace_id": good, "name": "helpful", "value": [1]},  # rejected alone
            {"trace_id": good, "name": "helpful", "value": 2, "data_type": "boolean"},  # rejected alone
        ],
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["accepted"] == 4 and result["rejected"] == 3 and "fb-1" in result["ids"]
    assert [e.split(":")[0] for e in result["errors"]] == ["score 4", "score 5", "score 6"]
    all_bad = _post_scores(server, {"trace_id": good, "name": "", "value": 1})
    assert all_bad.status_code == 400 and "name" in all_bad.json()["errors"][0]
    assert _post_scores(server, b"x".decode()).status_code == 400

    # the same id again replaces the score: the user changed their mind
    assert (
        _post_scores(server, {"trace_id": bad, "name": "helpful", "value": True, "id": "fb-1"}).status_code
        == 200
    )
    assert (
        _post_scores(server, {"trace_id": bad, "name": "helpful", "value": False, "id": "fb-1"}).status_code
        == 200
    )

    server.wait_for_spans(4)  # scores are acked once durable, queryable when written
    tree = server.get(f"/api/v1/traces/{good}")
    assert {(s["name"], s["value"], s["span_id"]) for s in tree["scores"]} == {
        ("helpful", 1.0, ""),
        ("quality", 0.9, llm_span),
    }
    assert [s["name"] for s in server.get(f"/api/v1/traces/{good}/spans/{llm_span}")["scores"]] == ["quality"]

    unhelpful = server.get("/api/v1/traces", score="helpful=0")["traces"]
    assert [t["trace_id"] for t in unhelpful] == [bad]
    assert [t["trace_id"] for t in server.get("/api/v1/traces", score="quality>=0.5")["traces"]] == [good]
    assert [t["trace_id"] for t in server.get("/api/v1/traces", score="topic=billing")["traces"]] == [bad]
    with server.client() as c:
        assert c.get("/api/v1/traces", params={"score": "quality>>1"}).status_code == 400
        assert c.get("/api/v1/traces", params={"score": "topic<billing"}).status_code == 400

    summary = server.get("/api/v1/scores", group_by="tenant", score_name="helpful")["scores"]
    by_tenant = {row["tenant_id"]: row for row in summary}
    assert by_tenant["acme"]["mean"] == 1.0 and by_tenant["acme"]["labels"] == {"true": 1}
    assert by_tenant["globex"]["mean"] == 0.0 and by_tenant["globex"]["scores"] == 1
    topics = server.get("/api/v1/scores", score_name="topic")["scores"]
    assert topics == [
        {
            "name": "topic",
            "data_type": "categorical",
            "scores": 1,
            "mean": None,
            "min": None,
            "max": None,
            "labels": {"billing": 1},
        }
    ]


def test_scores_reach_only_their_own_project(server, start_server):
    locked = start_server("--require-key")
    with locked.client() as c:
        assert (
            c.post("/api/v1/scores", json={"trace_id": new_trace_id(), "name": "x", "value": 1}).status_code
            == 401
        )

    with server.client() as c:  # loopback: the admin may create projects
        key_a, key_b = (
            c.post("/api/v1/projects", json={"name": n}).json()["api_key"] for n in ("alpha", "beta")
        )
    trace_id = new_trace_id()
    server.post_traces(protobuf([span(trace_id, name="request", attributes={"tenant.id": "acme"})]), key_a)
    assert (
        _post_scores(server, {"trace_id": trace_id, "name": "helpful", "value": True}, key_a).status_code
        == 200
    )
    # beta scoring alpha's trace id writes into beta only
    assert (
        _post_scores(server, {"trace_id": trace_id, "name": "helpful", "value": False}, key_b).status_code
        == 200
    )
    server.wait_for_spans(1, key=key_a)
    server.wait_for_spans(0, key=key_b)
    assert [s["value"] for s in server.get(f"/api/v1/traces/{trace_id}", key_a)["scores"]] == [1.0]
    assert server.get("/api/v1/scores", key_b)["scores"] == []  # no span of beta's to place it by
    assert [r["mean"] for r in server.get("/api/v1/scores", key_a, group_by="tenant")["scores"]] == [1.0]
    assert server.get("/api/v1/traces", key_b, score="helpful=1")["traces"] == []
    assert server.get("/api/v1/scores")["scores"] == []  # the default project saw nothing


def _llm(trace_id: str, **attrs):
    base = chat(trace_id, input_tokens=50, output_tokens=20)
    base["attributes"].update(attrs)
    return base


@pytest.mark.parametrize("as_content", [True, False])
def test_rule_checks_score_truncation_refusal_and_invalid_json_at_ingest(server, as_content):
    trace_id = new_trace_id()
    not_json = [{"role": "assistant", "parts": [{"type": "text", "content": 'Sure! {"a": 1'}]}]
    valid = [{"role": "assistant", "parts": [{"type": "text", "content": '{"a": 1}'}]}]
    json_attrs = (
        {"gen_ai.output.messages": orjson.dumps(not_json).decode()}
        if as_content
        else {"tokentrace.output.json_valid": False}
    )
    spans = [
        _llm(trace_id, **{"gen_ai.response.finish_reasons": ["length"]}),
        _llm(trace_id, **{"gen_ai.response.finish_reasons": ["refusal"]}),
        _llm(trace_id, **{"gen_ai.response.finish_reasons": ["stop"], "tokentrace.refusal": True}),
        _llm(trace_id, **{"gen_ai.output.type": "json", **json_attrs}),
        _llm(
            trace_id, **{"gen_ai.output.type": "json", "gen_ai.output.messages": orjson.dumps(valid).decode()}
        ),
        _llm(trace_id, **{"gen_ai.response.finish_reasons": ["stop"]}),
    ]
    server.post_traces(protobuf(spans))
    server.post_traces(protobuf(spans))  # resent: scored once
    server.wait_for_spans(6)
    scores = server.get(f"/api/v1/traces/{trace_id}")["scores"]
    found = sorted((s["name"], s["span_id"]) for s in scores)
    ids = [s["span_id"] for s in spans]
    assert found == sorted(
        [("truncated", ids[0]), ("refusal", ids[1]), ("refusal", ids[2]), ("invalid_json", ids[3])]
    )
    assert all(s["source"] == "rule" and s["data_type"] == "boolean" for s in scores)
