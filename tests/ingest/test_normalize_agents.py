"""What agent frameworks send, span by span: only LLM calls count, and every call says who served it.

The shapes are those recorded in tests/ingest/agents/fixtures (test_agents.py checks whole runs);
here each rule alone, with the cases it must leave alone.
"""

from __future__ import annotations

import pytest

from tests.builders.raw_spans import one, raw
from tokentrace import vocab

INTERNAL, CLIENT = 1, 3


def test_an_agent_run_s_usage_totals_are_shown_never_counted():
    """Strands' `invoke_agent` carries its calls' totals and a model: kept as subtotals, no tokens
    and no cost of its own."""
    row = one(
        raw(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.system": "strands-agents",
                "gen_ai.agent.name": "weather_agent",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 217,
                "gen_ai.usage.output_tokens": 123,
                "gen_ai.usage.total_tokens": 340,
            },
            name="invoke_agent weather_agent",
            kind=INTERNAL,
        )
    )
    assert row["operation"] == "invoke_agent" and row["agent_name"] == "weather_agent"
    assert [row[f] for f in ("input_tokens", "output_tokens", "total_tokens")] == [None, None, None]
    subtotal = {k: v for k, v in row["attributes"].items() if k.startswith("tokentrace.subtotal.")}
    assert subtotal == {
        "tokentrace.subtotal.input_tokens": 217,
        "tokentrace.subtotal.output_tokens": 123,
        "tokentrace.subtotal.total_tokens": 340,
    }
    # smolagents' AGENT span (OpenInference), named after the agent: the same
    smol = one(
        raw(
            {
                "openinference.span.kind": "AGENT",
                "llm.token_count.prompt": 1152,
                "llm.token_count.completion": 9,
            },
            name="weather_agent.run",
            kind=INTERNAL,
        )
    )
    assert (smol["operation"], smol["agent_name"], smol["input_tokens"]) == (
        "invoke_agent",
        "weather_agent",
        None,
    )


def test_a_remote_agent_keeps_its_usage():
    """`invoke_agent` as a CLIENT span is a remote agent: the one record of what it spent."""
    row = one(
        raw(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 900,
                "gen_ai.usage.output_tokens": 40,
            },
            name="invoke_agent assistant",
            kind=CLIENT,
        )
    )
    assert (row["input_tokens"], row["output_tokens"]) == (900, 40)


def test_a_preparation_step_of_llm_kind_is_no_call():
    """LlamaIndex's `_prepare_chat_with_tools`: LLM kind and a model, no usage, no answer, no error.
    A CLIENT span with nothing of its answer recorded did send a request, and a failed one counts."""
    prepared = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai"}
    row = one(raw(prepared, name="OpenAI._prepare_chat_with_tools", kind=INTERNAL))
    assert row["operation"] == "other" and row["attributes"]["tokentrace.not_a_call"] == "chat"
    sent = one(raw({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}, kind=CLIENT))
    assert sent["operation"] == "chat"
    failed = one(raw(prepared, kind=INTERNAL, status_code=2, status_message="RateLimitError: 429"))
    assert (failed["operation"], failed["error_type"]) == ("chat", "rate_limit")


@pytest.mark.parametrize(
    ("model", "provider", "want"),
    [
        ("openai/gpt-4o-mini", None, ("openai", "gpt-4o-mini")),
        ("anthropic/claude-haiku-4-5", "litellm", ("anthropic", "claude-haiku-4-5")),
        (
            "bedrock/converse/anthropic.claude-3-5-sonnet",
            None,
            ("aws_bedrock", "anthropic.claude-3-5-sonnet"),
        ),
        ("azure/prod-gpt4o", None, ("azure_openai", "prod-gpt4o")),
        # an instrumentation that calls every LiteLLM call `openai`: the name's family wins
        ("anthropic/claude-haiku-4-5", "openai", ("anthropic", "claude-haiku-4-5")),
        # Groq serving an open-weights model whose id has a slash: kept as sent
        ("openai/gpt-oss-120b", "groq", ("groq", "openai/gpt-oss-120b")),
        ("meta-llama/Llama-3.1-8B", "vllm", ("vllm", "meta-llama/Llama-3.1-8B")),
    ],
)
def test_router_model_names_are_split_before_pricing(model, provider, want):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 10}
    if provider:
        attrs["gen_ai.provider.name"] = provider
    row = one(raw(attrs))
    assert (row["provider"], row["request_model"]) == want
    if want[1] != model:
        assert row["attributes"]["tokentrace.model.routed"] == model


def test_a_framework_is_never_the_provider():
    """Strands (`strands-agents`), ADK's legacy `gcp.vertex.agent`, Agent Framework's name: the
    server's host or the model's family says who served the call; unknown stays unknown."""
    for framework in ("strands-agents", "gcp.vertex.agent", "microsoft.agent_framework", "langgraph"):
        row = one(raw({"gen_ai.system": framework, "gen_ai.request.model": "claude-haiku-4-5"}, name="chat"))
        assert row["provider"] == "anthropic", framework
    hosted = one(
        raw(
            {
                "gen_ai.system": "strands-agents",
                "gen_ai.request.model": "my-model",
                "server.address": "api.groq.com",
            }
        )
    )
    assert hosted["provider"] == "groq"
    unknown = one(raw({"gen_ai.system": "strands-agents", "gen_ai.request.model": "my-finetune"}))
    assert unknown["provider"] is None
    assert vocab.serving_provider(None, "gpt-oss-20b") is None


def test_operations_and_models_from_the_conventions_span_names():
    """`invoke_workflow`, `execute_tool get_weather`, and OpenLIT's Anthropic 429, a span named
    `chat claude-sonnet-4-5` with no attributes at all: a failed call of that model."""
    assert one(raw({}, name="invoke_workflow weather_agent"))["operation"] == "invoke_workflow"
    tool = one(raw({"gen_ai.tool.name": "get_weather"}, name="execute_tool get_weather", kind=INTERNAL))
    assert tool["operation"] == "execute_tool"
    failed = one(raw({}, name="chat claude-sonnet-4-5", status_code=2, status_message="RateLimitError: 429"))
    assert (failed["operation"], failed["request_model"], failed["provider"], failed["error_type"]) == (
        "chat",
        "claude-sonnet-4-5",
        "anthropic",
        "rate_limit",
    )
    assert one(raw({}, name="chat"))["operation"] == "other"  # a bare word names no operation


def test_run_metadata_tags_and_conversation_ids():
    """pydantic-ai's run `metadata` JSON gives tags; a Responses API id passed as the conversation
    (Agent Framework) is no session; a real conversation id is."""
    root = one(
        raw(
            {
                "gen_ai.operation.name": "invoke_agent",
                "metadata": '{"user_id":"u42","session_id":"s-9","tenant_id":"acme"}',
                "gen_ai.conversation.id": "s-9",
                "gen_ai.aggregated_usage.input_tokens": 222,
                "gen_ai.aggregated_usage.output_tokens": 157,
            },
            name="invoke_agent weather_agent",
        )
    )
    assert (root["user_id"], root["session_id"], root["tenant_id"]) == ("u42", "s-9", "acme")
    assert (root["input_tokens"], root["attributes"]["tokentrace.subtotal.input_tokens"]) == (None, 222)
    chained = one(raw({"gen_ai.conversation.id": "resp_fa3ad453b7f6497e42c00b8a"}))
    assert chained["session_id"] is None
    assert one(raw({"gen_ai.conversation.id": "conv-7"}))["session_id"] == "conv-7"


def test_openinference_params_that_are_the_response_object():
    """The Agents SDK's OpenInference spans put the Responses API's answer in
    `llm.invocation_parameters`: its model is the response model and its id the response id."""
    row = one(
        raw(
            {
                "openinference.span.kind": "LLM",
                "llm.system": "openai",
                "llm.token_count.prompt": 105,
                "llm.token_count.completion": 8,
                "llm.invocation_parameters": '{"id": "resp_1", "created_at": 1796325488.4, '
                '"model": "gpt-4o-mini-2024-07-18", "temperature": 1.0}',
            },
            name="response",
        )
    )
    assert (row["request_model"], row["response_model"], row["response_id"]) == (
        None,
        "gpt-4o-mini-2024-07-18",
        "resp_1",
    )
    assert row["temperature"] == 1.0 and row["provider"] == "openai"


def test_mcp_requests_are_a_tool_run_s_transport():
    """Client and server spans of one MCP `tools/call` name the tool; the framework's tool span is
    the run. Other MCP methods are plain spans."""
    server = one(
        raw(
            {
                "mcp.method.name": "tools/call",
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "get_weather",
                "mcp.session.id": "9071f681",
            },
            name="tools/call get_weather",
            kind=2,
        )
    )
    assert (server["operation"], server["tool_name"], server["session_id"]) == ("other", "get_weather", None)
    client = one(raw({"mcp.method.name": "tools/call"}, name="MCP send tools/call get_weather", kind=CLIENT))
    assert (client["operation"], client["tool_name"]) == ("other", "get_weather")
    listing = one(raw({"mcp.method.name": "tools/list"}, name="MCP send tools/list", kind=CLIENT))
    assert (listing["operation"], listing["tool_name"]) == ("other", None)
