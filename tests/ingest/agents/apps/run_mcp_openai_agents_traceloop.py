# venv: mcp-openai-agents-traceloop
"""OpenAI Agents SDK whose one tool comes from an MCP server (mcp_v1_weather_server.py, the MCP SDK
1.x FastMCP, started over stdio by MCPServerStdio), on the MCP SDK 1.x (no OpenTelemetry of its own):
Traceloop's (OpenLLMetry) OpenAIAgentsInstrumentor and McpInstrumentor without traceloop-sdk, which
carries the trace context in the request's params._meta. Tags on harness.tagged_root, as in
run_openai_agents_traceloop.py (association properties need traceloop-sdk)."""

import asyncio
import os
import sys
from pathlib import Path

import harness
from opentelemetry.instrumentation.mcp import McpInstrumentor

# before mcp is imported: it wraps mcp.client.stdio.stdio_client, which agents.mcp imports by name
McpInstrumentor().instrument()

from agents import Agent, RunConfig, Runner, set_default_openai_client  # noqa: E402
from agents.mcp import MCPServerStdio  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from opentelemetry.instrumentation.openai_agents import OpenAIAgentsInstrumentor  # noqa: E402

harness.otel_sdk("mcp-openai-agents-traceloop")
OpenAIAgentsInstrumentor(replace_existing_processors=True).instrument()
set_default_openai_client(AsyncOpenAI(base_url=harness.OPENAI_BASE, api_key="sk-simulated"))

SERVER = Path(__file__).with_name("mcp_v1_weather_server.py")
# A stdio server inherits only a few variables (PATH, HOME…): hand it the OTLP endpoint and any
# OTEL_* settings (the exporter's auth header) so that it exports where the app does.
SERVER_ENV = {"OTLP_URL": harness.OTLP_URL} | {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
CONFIG = RunConfig(group_id=harness.SESSION)


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
        with harness.scenario("plain"), harness.tagged_root("plain"):
            await Runner.run(agent, harness.QUESTION, run_config=CONFIG)

        with harness.scenario("stream", streamed=True), harness.tagged_root("stream"):
            result = Runner.run_streamed(agent, harness.QUESTION, run_config=CONFIG)
            async for _event in result.stream_events():
                pass


asyncio.run(main())
harness.finish(
    tags="harness.tagged_root; RunConfig.group_id=session",
    mcp="get_weather served by mcp_v1_weather_server.py (MCP SDK 1.x FastMCP, stdio, own exporter)",
)
