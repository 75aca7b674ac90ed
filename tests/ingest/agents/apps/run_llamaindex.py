# venv: llamaindex
"""LlamaIndex FunctionAgent (llama_index.core.agent.workflow) traced by OpenInference's
LlamaIndexInstrumentor; tags through openinference's using_attributes."""

import asyncio

import harness
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.llms.anthropic import Anthropic
from llama_index.llms.openai import OpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

provider = harness.otel_sdk("llamaindex")
LlamaIndexInstrumentor().instrument(tracer_provider=provider)


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return harness.get_weather(city)


def agent(llm, streaming=False):
    return FunctionAgent(
        name=harness.AGENT,
        tools=[get_weather],
        llm=llm,
        system_prompt=harness.INSTRUCTIONS,
        streaming=streaming,
    )


openai_llm = OpenAI(model=harness.OPENAI_MODEL, api_base=harness.OPENAI_BASE)
# without stream_options the streamed chat completions carry no usage
streaming_llm = OpenAI(
    model=harness.OPENAI_MODEL,
    api_base=harness.OPENAI_BASE,
    additional_kwargs={"stream_options": {"include_usage": True}},
)
anthropic_llm = Anthropic(model=harness.ANTHROPIC_MODEL, base_url=harness.PROVIDER_URL)


async def main():
    tags = using_attributes(
        user_id=harness.USER, session_id=harness.SESSION, metadata={"tenant_id": harness.TENANT}
    )

    with harness.scenario("plain"), tags:
        await agent(openai_llm).run(user_msg=harness.QUESTION)

    with harness.scenario("stream", streamed=True), tags:
        handler = agent(streaming_llm, streaming=True).run(user_msg=harness.QUESTION)
        async for _event in handler.stream_events():
            pass
        await handler

    with harness.scenario("anthropic", provider="anthropic"), tags:
        await agent(anthropic_llm).run(user_msg=harness.QUESTION)


asyncio.run(main())
harness.finish(tags="openinference using_attributes")
