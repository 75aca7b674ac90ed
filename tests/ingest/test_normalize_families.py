"""Family shapes the live scenarios do not produce: agent and tool kinds, older spellings, values
hidden in JSON strings, scrubbed tags, and bad values inside a family's JSON."""

from __future__ import annotations

from tests.builders.raw_spans import one, raw
from tokentrace.ingest.normalize import normalize


def test_traceloop_span_kinds_and_association_properties():
    agent = one(
        raw(
            {
                "traceloop.span.kind": "agent",
                "traceloop.entity.name": "planner",
                "traceloop.association.properties.tenant_id": "acme",
                "traceloop.association.properties.feature": "refund-chat",
            },
            scope_name="traceloop.tracer",
        )
    )
    assert agent["operation"] == "invoke_agent" and agent["agent_name"] == "planner"
    assert agent["tenant_id"] == "acme" and agent["feature"] == "refund-chat"
    tool = one(raw({"traceloop.span.kind": "tool", "traceloop.entity.name": "lookup"}))
    assert tool["operation"] == "execute_tool" and tool["tool_name"] == "lookup"
    workflow = one(raw({"traceloop.span.kind": "workflow", "traceloop.entity.name": "handle"}))
    assert workflow["operation"] == "other"


def test_traceloop_older_releases_flattened_prompts_and_llm_usage():
    batch = normalize(
        [
            raw(
                {
                    "llm.request.type": "chat",
                    "gen_ai.system": "OpenAI",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.prompt_tokens": 12,
                    "gen_ai.usage.completion_tokens": 3,
                    "llm.usage.total_tokens": 15,
                    "gen_ai.prompt.0.role": "user",
                    "gen_ai.prompt.0.content": "hi",
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.content": "hello",
                },
                scope_name="opentelemetry.instrumentation.openai.v1",
            )
        ],
        "p1",
    )
    [row], [content] = batch.rows, batch.content
    assert (row["operation"], row["provider"]) == ("chat", "openai")
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (12, 3, 15)
    assert '"content":"hi"' in content["input_messages"]
    assert '"content":"hello"' in content["output_messages"]
    assert not any(k.startswith("gen_ai.prompt.") for k in row["attributes"])


def test_openinference_kinds_json_parameters_and_flattened_tool_calls():
    retriever = one(raw({"openinference.span.kind": "RETRIEVER"}))
    assert retriever["operation"] == "retrieval"
    tool = one(raw({"openinference.span.kind": "TOOL", "tool.name": "lookup_order"}))
    assert (tool["operation"], tool["tool_name"]) == ("execute_tool", "lookup_order")
    batch = normalize(
        [
            raw(
                {
                    "openinference.span.kind": "LLM",
                    "llm.provider": "openai",
                    "llm.model_name": "gpt-4o-2024-08-06",
                    "llm.invocation_parameters": '{"model": "gpt-4o", "temperature": 0.2, "max_tokens": 50}',
                    "llm.token_count.prompt": 10,
                    "llm.token_count.completion": 4,
                    "llm.token_count.completion_details.reasoning": 2,
                    "metadata": '{"tenant_id": "acme", "prompt_version": "v4"}',
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"id": 1}',
                    "output.value": '{"id": "chatcmpl-9"}',
                }
            )
        ],
        "p1",
    )
    [row], [content] = batch.rows, batch.content
    assert (row["request_model"], row["response_model"]) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert (row["temperature"], row["max_tokens"], row["reasoning_tokens"]) == (0.2, 50, 2)
    assert (row["tenant_id"], row["prompt_version"], row["response_id"]) == ("acme", "v4", "chatcmpl-9")
    assert (
        '"type":"tool_call","id":"call_1","name":"lookup","arguments":{"id":1}' in content["output_messages"]
    )


def test_langfuse_values_in_json_strings_and_anthropic_raw_usage():
    row = one(
        raw(
            {
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.name": "claude-sonnet-4-5",
                "langfuse.observation.usage_details": (
                    '{"input_tokens": 25, "output_tokens": 12, "cache_read_input_tokens": 100,'
                    ' "cache_creation_input_tokens": 50}'
                ),
                "langfuse.observation.model.parameters": '{"max_tokens": "Infinity", "temperature": 0}',
                "langfuse.trace.metadata.tenant_id": '"acme"',
                "langfuse.observation.level": "ERROR",
                "langfuse.observation.status_message": "Error code: 529 - overloaded",
            },
            name="Anthropic-generation",
            scope_name="langfuse-sdk",
        )
    )
    # Anthropic's raw input excludes the cache; the canonical input includes it
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (175, 100, 50)
    assert row["total_tokens"] == 187 and row["provider"] == "anthropic"
    assert row["max_tokens"] is None and row["temperature"] == 0.0
    assert row["tenant_id"] == "acme"
    assert (row["status"], row["error_type"]) == ("error", "server_error")


def test_a_bad_count_inside_a_family_json_rejects_that_span_alone():
    good = raw(
        {"langfuse.observation.type": "generation", "langfuse.observation.usage_details": '{"input": 3}'}
    )
    bad = raw(
        {"langfuse.observation.type": "generation", "langfuse.observation.usage_details": '{"input": -3}'},
        span_id="b7ad6b7169203332",
    )
    batch = normalize([good, bad], "p1")
    assert [r["input_tokens"] for r in batch.rows] == [3]
    assert len(batch.errors) == 1 and "b7ad6b7169203332" in batch.errors[0]


def test_logfire_scrubbed_tags_are_no_tags_and_raw_usage_fills_cache_and_reasoning():
    row = one(
        raw(
            {
                "logfire.span_type": "span",
                "logfire.msg": "Chat Completion with 'o3'",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "o3",
                "gen_ai.usage.input_tokens": 40,
                "gen_ai.usage.output_tokens": 30,
                "gen_ai.usage.raw": (
                    '{"prompt_tokens": 40, "completion_tokens": 30, "total_tokens": 70,'
                    ' "prompt_tokens_details": {"cached_tokens": 0},'
                    ' "completion_tokens_details": {"reasoning_tokens": 20}}'
                ),
                "gen_ai.response.finish_reasons": '["stop"]',
                "session_id": "[Scrubbed due to 'session']",
                "user_id": "u42",
            },
            scope_name="logfire.openai",
        )
    )
    assert row["name"] == "Chat Completion with 'o3'"
    assert (row["cache_read_tokens"], row["reasoning_tokens"], row["total_tokens"]) == (0, 20, 70)
    assert row["finish_reason"] == "stop"
    assert row["session_id"] is None and row["user_id"] == "u42"


def test_openlit_anthropic_input_gets_the_cache_and_its_cost_stays_beside_ours():
    row = one(
        raw(
            {
                "gen_ai.provider.name": "anthropic",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 25,
                "gen_ai.usage.output_tokens": 12,
                "gen_ai.usage.cache_read.input_tokens": 100,
                "gen_ai.usage.cache_creation.input_tokens": 50,
                "gen_ai.usage.cost": 0.0123,
                "gen_ai.server.time_to_first_token": 0.5,
                "gen_ai.request.stream": False,
            },
            scope_name="openlit.instrumentation.anthropic",
        )
    )
    assert (row["input_tokens"], row["total_tokens"]) == (175, 187)
    assert row["attributes"]["gen_ai.usage.cost"] == 0.0123
    assert row["ttft_ms"] is None  # a non-stream's "first token" is its whole latency
