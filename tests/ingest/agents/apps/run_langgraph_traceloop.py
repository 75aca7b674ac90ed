# venv: langgraph
"""LangGraph (langchain.agents.create_agent, the prebuilt ReAct agent) traced by
opentelemetry-instrumentation-langchain, which on PyPI is Traceloop's (OpenLLMetry) package: the
OpenTelemetry project's own LangChain instrumentation (same name) is not published. No tag API of
its own: the tags go on an app-made root span (harness.tagged_root)."""

import harness
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from opentelemetry.instrumentation.langchain import LangchainInstrumentor

provider = harness.otel_sdk("langgraph-traceloop")
LangchainInstrumentor().instrument(tracer_provider=provider)


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return harness.get_weather(city)


def agent(model):
    return create_agent(model, tools=[get_weather], system_prompt=harness.INSTRUCTIONS, name=harness.AGENT)


openai_model = ChatOpenAI(model=harness.OPENAI_MODEL, base_url=harness.OPENAI_BASE)
streaming_model = ChatOpenAI(
    model=harness.OPENAI_MODEL, base_url=harness.OPENAI_BASE, streaming=True, stream_usage=True
)
anthropic_model = ChatAnthropic(model=harness.ANTHROPIC_MODEL, base_url=harness.PROVIDER_URL)

question = {"messages": [{"role": "user", "content": harness.QUESTION}]}

with harness.scenario("plain"), harness.tagged_root("plain"):
    agent(openai_model).invoke(question)

with harness.scenario("stream", streamed=True), harness.tagged_root("stream"):
    for _chunk in agent(streaming_model).stream(question, stream_mode="messages"):
        pass

with harness.scenario("anthropic", provider="anthropic"), harness.tagged_root("anthropic"):
    agent(anthropic_model).invoke(question)

harness.finish(
    tags="harness.tagged_root", instrumentation="opentelemetry-instrumentation-langchain (Traceloop)"
)
