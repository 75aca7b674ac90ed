# venv: agent-framework
"""Microsoft Agent Framework: an Agent with one function tool, its built-in OpenTelemetry
(configure_otel_providers, OTLP/HTTP protobuf, sensitive data on). OpenAI through
OpenAIChatClient (the Responses API), Anthropic through AnthropicClient. The framework has no
user/tenant tag API, so each run sits under harness.tagged_root."""

import asyncio

import harness
from agent_framework import Agent
from agent_framework.anthropic import AnthropicClient
from agent_framework.observability import configure_otel_providers
from agent_framework.openai import OpenAIChatClient
from opentelemetry import _logs, trace

configure_otel_providers(
    service_name="agent-framework",
    otlp_endpoint=harness.OTLP_URL,
    otlp_protocol="http/protobuf",
    enable_sensitive_data=True,
)
harness.on_flush(trace.get_tracer_provider().force_flush)
harness.on_flush(_logs.get_logger_provider().force_flush)


def weather_agent(client) -> Agent:
    return Agent(client, harness.INSTRUCTIONS, name=harness.AGENT, tools=[harness.get_weather])


async def main() -> None:
    openai = OpenAIChatClient(model=harness.OPENAI_MODEL, base_url=harness.OPENAI_BASE)
    anthropic = AnthropicClient(model=harness.ANTHROPIC_MODEL, base_url=harness.PROVIDER_URL)

    with harness.scenario("plain"), harness.tagged_root("plain"):
        await weather_agent(openai).run(harness.QUESTION)

    with harness.scenario("stream", streamed=True), harness.tagged_root("stream"):
        async for _update in weather_agent(openai).run(harness.QUESTION, stream=True):
            pass

    with harness.scenario("anthropic", provider="anthropic"), harness.tagged_root("anthropic"):
        await weather_agent(anthropic).run(harness.QUESTION)


asyncio.run(main())
harness.finish(api="openai responses")
