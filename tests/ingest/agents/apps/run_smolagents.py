# venv: smolagents
"""smolagents ToolCallingAgent, instrumented by openinference-instrumentation-smolagents
(SmolagentsInstrumentor, as its README shows) on a plain OTel SDK TracerProvider; tags through
openinference's using_attributes. OpenAI via OpenAIServerModel (the openai SDK), Anthropic via
LiteLLMModel (litellm's own HTTP client)."""

import harness
from openinference.instrumentation import using_attributes
from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from smolagents import LiteLLMModel, OpenAIServerModel, ToolCallingAgent, tool

provider = harness.otel_sdk("smolagents-app")
SmolagentsInstrumentor().instrument(tracer_provider=provider)


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city to get the weather for.
    """
    return harness.get_weather(city)


openai_model = OpenAIServerModel(model_id=harness.OPENAI_MODEL, api_base=harness.OPENAI_BASE)
anthropic_model = LiteLLMModel(model_id=f"anthropic/{harness.ANTHROPIC_MODEL}", api_base=harness.PROVIDER_URL)


# max_steps=1: smolagents sends tool results back as user "Observation:" messages (no `tool` role),
# so the simulated model would call get_weather again each step and never final_answer; one step
# (the get_weather call) then smolagents' own max-steps final answer (no tools) is two model calls.
def weather_agent(model, stream_outputs=False):
    return ToolCallingAgent(
        tools=[get_weather],
        model=model,
        name=harness.AGENT,
        instructions=harness.INSTRUCTIONS,
        max_steps=1,
        stream_outputs=stream_outputs,
        verbosity_level=0,
    )


def tags():
    return using_attributes(
        user_id=harness.USER, session_id=harness.SESSION, metadata={"tenant_id": harness.TENANT}
    )


with harness.scenario("plain"), tags():
    weather_agent(openai_model).run(harness.QUESTION)
with harness.scenario("stream", streamed=True), tags():
    for _ in weather_agent(openai_model, stream_outputs=True).run(harness.QUESTION, stream=True):
        pass
with harness.scenario("anthropic", provider="anthropic"), tags():
    weather_agent(anthropic_model).run(harness.QUESTION)

harness.finish(tags="openinference using_attributes(user_id, session_id, metadata)")
