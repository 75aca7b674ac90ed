# venv: langgraph
"""LangGraph (langchain.agents.create_agent, the prebuilt ReAct agent) traced by OpenInference's
LangChainInstrumentor; tags through openinference's using_attributes and LangChain config metadata."""

import harness
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.langchain import LangChainInstrumentor

provider = harness.otel_sdk("langgraph-openinference")
LangChainInstrumentor().instrument(tracer_provider=provider)


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
config = {"metadata": {"user_id": harness.USER, "session_id": harness.SESSION, "tenant_id": harness.TENANT}}
tags = using_attributes(
    user_id=harness.USER, session_id=harness.SESSION, metadata={"tenant_id": harness.TENANT}
)

with harness.scenario("plain"), tags:
    agent(openai_model).invoke(question, config=config)

with harness.scenario("stream", streamed=True), tags:
    for _chunk in agent(streaming_model).stream(question, config=config, stream_mode="messages"):
        pass

with harness.scenario("anthropic", provider="anthropic"), tags:
    agent(anthropic_model).invoke(question, config=config)

harness.finish(tags="openinference using_attributes + LangChain config metadata")
