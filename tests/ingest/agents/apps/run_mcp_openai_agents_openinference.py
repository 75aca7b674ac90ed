# venv: mcp-openai-agents-openinference
"""OpenAI Agents SDK whose one tool comes from an MCP server (mcp_sdk_weather_server.py, the MCP
SDK's MCPServer, started over stdio by MCPServerStdio): OpenInference's OpenAIAgentsInstrumentor
and MCPInstrumentor (context propagation only), plus the spans the MCP SDK 2 emits by itself on
both sides (the trace context travels in the request's params._meta). Tags: openinference
using_attributes, as in run_openai_agents_openinference.py."""

import asyncio
import os
import sys
from pathlib import Path

import harness
from agents import Agent, RunConfig, Runner, set_default_openai_client
from agents.mcp import MCPServerStdio
from openai import AsyncOpenAI
from openinference.instrumentation import using_attributes
from openinference.instrumentation.mcp import MCPInstrumentor
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor

harness.otel_sdk("mcp-openai-agents-openinference")
OpenAIAgentsInstrumentor().instrument()
MCPInstrumentor().instrument()
set_default_openai_client(AsyncOpenAI(base_url=harness.OPENAI_BASE, api_key="sk-simulated"))

SERVER = Path(__file__).with_name("mcp_sdk_weather_server.py")
# A stdio server inherits only a few variables (PATH, HOME…): hand it the OTLP endpoint and any
# OTEL_* settings (the exporter's auth header) so that it exports where the app does.
SERVER_ENV = {"OTLP_URL": harness.OTLP_URL} | {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
CONFIG = RunConfig(group_id=harness.SESSION)


def tags():
    return using_attributes(
        user_id=harness.USER, session_id=harness.SESSION, metadata={"tenant_id": harness.TENANT}
    )


async def main() -> None:
    params = {"command": sys.executable, "args": [str(SERVER)], "env": SERVER_ENV}
    # The SDK waits 5 s for each answer, `initialize` included; a busy CI box can take longer to
    # start the server (three apps at once beside the suite).
    async with MCPServerStdio(params=params, name="weather", client_session_timeout_seconds=60) as server:
        agent = Agent(
            name=harness.AGENT,
            instructions=harness.INSTRUCTIONS,
            model=harness.OPENAI_MODEL,
            mcp_servers=[server],
        )
        with harness.scenario("plain"), tags():
            await Runner.run(agent, harness.QUESTION, run_config=CONFIG)

        with harness.scenario("stream", streamed=True), tags():
            result = Runner.run_streamed(agent, harness.QUESTION, run_config=CONFIG)
            async for _event in result.stream_events():
                pass


asyncio.run(main())
harness.finish(
    tags="openinference using_attributes; RunConfig.group_id=session",
    mcp="get_weather served by mcp_sdk_weather_server.py (MCP SDK MCPServer, stdio, own exporter)",
)
