# venv: strands
"""Strands Agents, its own OpenTelemetry (StrandsTelemetry + OTLP exporter), default conventions."""

import asyncio
import os

import harness
from strands import Agent, tool
from strands.models.anthropic import AnthropicModel
from strands.models.openai import OpenAIModel
from strands.telemetry import StrandsTelemetry


def main() -> None:
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = harness.OTLP_URL
    telemetry = StrandsTelemetry().setup_otlp_exporter()
    harness.on_flush(telemetry.tracer_provider.force_flush)

    get_weather = tool(harness.get_weather)

    def agent(model) -> Agent:
        return Agent(
            name=harness.AGENT,
            model=model,
            system_prompt=harness.INSTRUCTIONS,
            tools=[get_weather],
            callback_handler=None,
            trace_attributes=harness.TAG_ATTRIBUTES,
        )

    def openai() -> OpenAIModel:
        return OpenAIModel(client_args={"base_url": harness.OPENAI_BASE}, model_id=harness.OPENAI_MODEL)

    async def stream() -> None:
        async for _event in agent(openai()).stream_async(harness.QUESTION):
            pass

    with harness.scenario("plain"):
        agent(openai())(harness.QUESTION)
    with harness.scenario("stream", streamed=True):
        asyncio.run(stream())
    with harness.scenario("anthropic", provider="anthropic"):
        model = AnthropicModel(
            client_args={"base_url": harness.PROVIDER_URL}, model_id=harness.ANTHROPIC_MODEL, max_tokens=1024
        )
        agent(model)(harness.QUESTION)
    harness.finish()


if __name__ == "__main__":
    main()
