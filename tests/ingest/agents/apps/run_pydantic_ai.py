# venv: pydantic-ai
"""pydantic-ai with its own OpenTelemetry instrumentation (Agent.instrument_all(), default
InstrumentationSettings) on a plain OTel SDK TracerProvider; tags as run metadata, the session as
pydantic-ai's conversation_id."""

import asyncio

import harness
from pydantic_ai import Agent
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

harness.otel_sdk("pydantic-ai-app")
Agent.instrument_all()

openai_model = OpenAIChatModel(harness.OPENAI_MODEL, provider=OpenAIProvider(base_url=harness.OPENAI_BASE))
anthropic_model = AnthropicModel(
    harness.ANTHROPIC_MODEL, provider=AnthropicProvider(base_url=harness.PROVIDER_URL)
)

agent = Agent(openai_model, name=harness.AGENT, instructions=harness.INSTRUCTIONS)
agent.tool_plain(harness.get_weather)

TAGS = {
    "conversation_id": harness.SESSION,
    "metadata": {"user_id": harness.USER, "session_id": harness.SESSION, "tenant_id": harness.TENANT},
}


async def main() -> None:
    with harness.scenario("plain"):
        await agent.run(harness.QUESTION, **TAGS)
    with harness.scenario("stream", streamed=True):
        async with agent.run_stream(harness.QUESTION, **TAGS) as stream:
            async for _ in stream.stream_text(delta=True):
                pass
    with harness.scenario("anthropic", provider="anthropic"):
        await agent.run(harness.QUESTION, model=anthropic_model, **TAGS)


asyncio.run(main())
harness.finish(tags="run metadata (metadata attribute on the agent run span); conversation_id=session")
