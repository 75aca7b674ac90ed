# venv: openai-agents-openinference
# env: LITELLM_LOCAL_MODEL_COST_MAP=True
"""OpenAI Agents SDK, traced by OpenInference's OpenAIAgentsInstrumentor (a TracingProcessor that
replaces the SDK's own OpenAI trace exporter by default). Tags: openinference using_attributes."""

import asyncio

import harness
from agents import Agent, RunConfig, Runner, function_tool, set_default_openai_client
from agents.extensions.models.litellm_model import LitellmModel
from openai import AsyncOpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

harness.otel_sdk("openai-agents-openinference")
OpenAIAgentsInstrumentor().instrument()
set_default_openai_client(AsyncOpenAI(base_url=harness.OPENAI_BASE, api_key="sk-simulated"))


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return harness.get_weather(city)


def agent(model=harness.OPENAI_MODEL) -> Agent:
    return Agent(name=harness.AGENT, instructions=harness.INSTRUCTIONS, model=model, tools=[get_weather])


def tags():
    return using_attributes(
        user_id=harness.USER, session_id=harness.SESSION, metadata={"tenant_id": harness.TENANT}
    )


CONFIG = RunConfig(group_id=harness.SESSION)


async def main() -> None:
    with harness.scenario("plain"), tags():
        await Runner.run(agent(), harness.QUESTION, run_config=CONFIG)

    with harness.scenario("stream", streamed=True), tags():
        result = Runner.run_streamed(agent(), harness.QUESTION, run_config=CONFIG)
        async for _event in result.stream_events():
            pass

    anthropic = LitellmModel(
        model=f"anthropic/{harness.ANTHROPIC_MODEL}",
        base_url=harness.PROVIDER_URL,
        api_key="sk-ant-simulated",
    )
    with harness.scenario("anthropic", provider="anthropic"), tags():
        await Runner.run(agent(anthropic), harness.QUESTION, run_config=CONFIG)


# One event loop for all runs: the AsyncOpenAI client is bound to the loop it first ran on.
asyncio.run(main())
harness.finish()
