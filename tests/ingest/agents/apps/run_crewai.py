# venv: crewai
# env: CREWAI_DISABLE_TELEMETRY=true CREWAI_TRACING_ENABLED=false
"""CrewAI: one Agent with one @tool, one Task, one Crew, kickoff(). crewai.LLM routes
"openai/…" and "anthropic/…" to its native providers (the openai and anthropic SDKs, not
LiteLLM), so OpenInference's CrewAI instrumentor runs with its OpenAI and Anthropic ones. Tags
through OpenInference's using_attributes (tenant in its metadata). CrewAI's own telemetry and
tracing are off through the environment above (OTEL_SDK_DISABLED would stop our exporter too)."""

import harness
from crewai import LLM, Agent, Crew, Task
from crewai.tools import tool
from openinference.instrumentation import using_attributes
from openinference.instrumentation.anthropic import AnthropicInstrumentor
from openinference.instrumentation.crewai import CrewAIInstrumentor
from openinference.instrumentation.openai import OpenAIInstrumentor

provider = harness.otel_sdk("crewai")
CrewAIInstrumentor().instrument(tracer_provider=provider)
OpenAIInstrumentor().instrument(tracer_provider=provider)
AnthropicInstrumentor().instrument(tracer_provider=provider)

get_weather = tool(harness.get_weather)


def crew(llm: LLM, stream: bool = False) -> Crew:
    agent = Agent(
        role=harness.AGENT,
        goal="Answer the weather question.",
        backstory=harness.INSTRUCTIONS,
        tools=[get_weather],
        llm=llm,
    )
    task = Task(description=harness.QUESTION, expected_output="The weather in one sentence.", agent=agent)
    return Crew(agents=[agent], tasks=[task], stream=stream)


def tags():
    return using_attributes(
        user_id=harness.USER, session_id=harness.SESSION, metadata={"tenant.id": harness.TENANT}
    )


openai = LLM(model=f"openai/{harness.OPENAI_MODEL}", base_url=harness.OPENAI_BASE, api_key="sk-simulated")

with harness.scenario("plain"), tags():
    crew(openai).kickoff()

with harness.scenario("stream", streamed=True), tags():
    streaming = crew(openai, stream=True).kickoff()
    for _chunk in streaming:
        pass

anthropic = LLM(
    model=f"anthropic/{harness.ANTHROPIC_MODEL}", base_url=harness.PROVIDER_URL, api_key="sk-ant-simulated"
)
with harness.scenario("anthropic", provider="anthropic"), tags():
    crew(anthropic).kickoff()

harness.finish(llm_route=f"native: {type(openai).__module__}, {type(anthropic).__module__}")
