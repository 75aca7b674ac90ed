# venv: adk
"""Google ADK: LlmAgent on ADK's own Anthropic-API model class (AnthropicLlm, the anthropic SDK's
AsyncAnthropic; ADK's `Claude` class is Vertex AI only), ADK's own OpenTelemetry spans."""

import asyncio

import harness
from google.adk.agents import RunConfig
from google.adk.agents.run_config import StreamingMode
from google.adk.models.anthropic_llm import AnthropicLlm
from run_adk_litellm import run


def main() -> None:
    harness.otel_sdk("weather-app")
    with harness.scenario("anthropic", provider="anthropic"):
        asyncio.run(run(AnthropicLlm(model=harness.ANTHROPIC_MODEL, max_tokens=1024)))
    with harness.scenario("anthropic-stream", provider="anthropic", streamed=True):
        model = AnthropicLlm(model=harness.ANTHROPIC_MODEL, max_tokens=1024)
        asyncio.run(run(model, RunConfig(streaming_mode=StreamingMode.SSE)))
    harness.finish()


if __name__ == "__main__":
    main()
