# venv: openai-agents-traceloop
# env: LITELLM_LOCAL_MODEL_COST_MAP=True
"""OpenAI Agents SDK, traced by Traceloop's (OpenLLMetry) opentelemetry-instrumentation-openai-agents
without traceloop-sdk: a TracingProcessor, here replacing the SDK's own OpenAI trace exporter.
Association properties need traceloop-sdk's span processor, so the tags go on harness.tagged_root."""

import asyncio

import harness
from agents import Agent, RunConfig, Runner, function_tool, set_default_openai_client
from agents.extensions.models.litellm_model import LitellmModel
from openai import AsyncOpenAI
from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor

harness.otel_sdk("openai-agents-traceloop")
OpenAIAgentsInstrumentor(replace_existing_processors=True).instrument()
set_default_openai_client(AsyncOpenAI(base_url=harness.OPENAI_BASE, api_key="sk-simulated"))


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return harness.get_weather(city)


def agent(model=harness.OPENAI_MODEL) -> Agent:
    return Agent(name=harness.AGENT, instructions=harness.INSTRUCTIONS, model=model, tools=[get_weather])


CONFIG = RunConfig(group_id=harness.SESSION)


async def main() -> None:
    with harness.scenario("plain"), harness.tagged_root("plain"):
        await Runner.run(agent(), harness.QUESTION, run_config=CONFIG)

    with harness.scenario("stream", streamed=True), harness.tagged_root("stream"):
        result = Runner.run_streamed(agent(), harness.QUESTION, run_config=CONFIG)
        async for _event in result.stream_events():
            pass

    anthropic = LitellmModel(
        model=f"anthropic/{harness.ANTHROPIC_MODEL}",
        base_url=harness.PROVIDER_URL,
        api_key="sk-ant-simulated",
    )
    with harness.scenario("anthropic", provider="anthropic"), harness.tagged_root("anthropic"):
        await Runner.run(agent(anthropic), harness.QUESTION, run_config=CONFIG)


# One event loop for all runs: the AsyncOpenAI client is bound to the loop it first ran on.
asyncio.run(main())
harness.finish()
