"""The real OpenTelemetry SDK exports nested gen_ai spans to a running server (HTTP and gRPC);
the API returns the tree, the tokens and the cost, computed here independently."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from genai_prices import Usage, calc_price
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def _expected(model: str, provider: str, **usage: int) -> float:
    return float(
        calc_price(
            Usage(**usage), model, provider_id=provider, genai_request_timestamp=datetime.now(UTC)
        ).total_price
    )


def _run_agent(exporter) -> str:
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "support-bot", "service.version": "1.2.3", "deployment.environment.name": "prod"}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span(
        "invoke_agent support",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "user.id": "u42",
            "tenant.id": "acme",
            "session.id": "s-9",
        },
    ) as root:
        with tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": 1500,
                "gen_ai.usage.output_tokens": 120,
                "gen_ai.usage.cache_read.input_tokens": 1024,
                "gen_ai.response.finish_reasons": ["tool_calls"],
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 512,
                "tenant.id": "acme",
            },
        ):
            time.sleep(0.005)
        with tracer.start_as_current_span(
            "execute_tool lookup_order",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order"},
        ):
            pass
        with tracer.start_as_current_span(
            "chat claude-sonnet-4-5",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 175,
                "gen_ai.usage.output_tokens": 14,
                "gen_ai.usage.cache_read.input_tokens": 100,
                "gen_ai.usage.cache_creation.input_tokens": 50,
                "gen_ai.response.finish_reasons": ["end_turn"],
                "tenant.id": "acme",
            },
        ):
            pass
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_exported_agent_trace_has_tree_tokens_and_cost(server, transport):
    exporter = (
        HttpExporter(endpoint=f"{server.url}/v1/traces")
        if transport == "http"
        else GrpcExporter(endpoint=f"127.0.0.1:{server.grpc_port}", insecure=True)
    )
    trace_id = _run_agent(exporter)
    server.wait_for_spans(4)

    tree = server.get(f"/api/v1/traces/{trace_id}")
    assert tree["span_count"] == 4
    [root] = tree["roots"]
    assert root["name"] == "invoke_agent support"
    assert root["operation"] == "invoke_agent" and root["agent_name"] == "support"
    assert root["service_name"] == "support-bot" and root["environment"] == "prod"
    children = {c["name"]: c for c in root["children"]}
    assert set(children) == {"chat gpt-4o", "execute_tool lookup_order", "chat claude-sonnet-4-5"}

    gpt = children["chat gpt-4o"]
    assert (gpt["provider"], gpt["request_model"], gpt["response_model"]) == (
        "openai",
        "gpt-4o",
        "gpt-4o-2024-08-06",
    )
    assert (gpt["input_tokens"], gpt["output_tokens"], gpt["total_tokens"]) == (1500, 120, 1620)
    assert gpt["cache_read_tokens"] == 1024 and gpt["cache_write_tokens"] is None
    assert gpt["reasoning_tokens"] is None  # not sent, so not guessed
    assert gpt["finish_reason"] == "tool_calls" and gpt["temperature"] == 0.2 and gpt["max_tokens"] == 512
    assert gpt["parent_span_id"] == root["span_id"] and gpt["kind"] == "internal"
    gpt_cost = _expected(
        "gpt-4o-2024-08-06", "openai", input_tokens=1500, cache_read_tokens=1024, output_tokens=120
    )
    assert gpt["cost_usd"] == pytest.approx(gpt_cost, abs=1e-12) and gpt["cost_known"] is True
    assert gpt["attributes"]["tokentrace.price.model"] == "gpt-4o"
    assert gpt["attributes"]["tokentrace.price.source"].startswith("genai-prices ")

    claude = children["chat claude-sonnet-4-5"]
    assert claude["finish_reason"] == "stop"
    assert (claude["cache_read_tokens"], claude["cache_write_tokens"]) == (100, 50)
    claude_cost = _expected(
        "claude-sonnet-4-5",
        "anthropic",
        input_tokens=175,
        cache_read_tokens=100,
        cache_write_tokens=50,
        output_tokens=14,
    )
    assert claude["cost_usd"] == pytest.approx(claude_cost, abs=1e-12)

    tool = children["execute_tool lookup_order"]
    assert tool["operation"] == "execute_tool" and tool["tool_name"] == "lookup_order"
    assert tool["cost_usd"] is None and tool["cost_known"] is None  # nothing to price

    assert tree["totals"]["cost_usd"] == pytest.approx(gpt_cost + claude_cost, abs=1e-12)
    assert root["subtree"]["input_tokens"] == 1675

    page = server.get("/api/v1/traces", user="u42", since="15m")
    assert [t["trace_id"] for t in page["traces"]] == [trace_id]
    summary = page["traces"][0]
    assert summary["llm_calls"] == 2 and summary["cost_usd"] == pytest.approx(gpt_cost + claude_cost)
    assert summary["root_name"] == "invoke_agent support" and summary["session_id"] == "s-9"

    by_tenant = server.get("/api/v1/rollups", group_by="tenant_id,model", since="1h")["rows"]
    acme = {r["request_model"]: r for r in by_tenant if r["tenant_id"] == "acme"}
    assert acme["gpt-4o"]["requests"] == 1 and acme["gpt-4o"]["cost_usd"] == pytest.approx(gpt_cost)
    assert acme["claude-sonnet-4-5"]["cache_write_tokens"] == 50


def test_cached_tokens_are_priced_at_their_own_rate(server):
    from tests.builders.otlp import chat, new_trace_id, protobuf

    cached, uncached = new_trace_id(), new_trace_id()
    body = protobuf(
        [
            chat(cached, input_tokens=10_000, output_tokens=100, **{"cache_read.input_tokens": 8_000}),
            chat(uncached, input_tokens=10_000, output_tokens=100),
        ]
    )
    assert server.post_traces(body).status_code == 200
    server.wait_for_spans(2)
    cost = {t["trace_id"]: t["cost_usd"] for t in server.get("/api/v1/traces")["traces"]}
    with_cache = _expected(
        "gpt-4o", "openai", input_tokens=10_000, cache_read_tokens=8_000, output_tokens=100
    )
    without = _expected("gpt-4o", "openai", input_tokens=10_000, output_tokens=100)
    assert cost[cached] == pytest.approx(with_cache, abs=1e-12)
    assert cost[uncached] == pytest.approx(without, abs=1e-12)
    assert cost[cached] < cost[uncached]
