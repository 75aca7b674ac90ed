# venv: mcp-pydantic-ai
"""pydantic-ai whose one tool comes from an MCP server (mcp_weather_server.py, a FastMCP server
started over stdio): pydantic-ai's own instrumentation (Agent.instrument_all()) on a plain OTel SDK
TracerProvider, plus the MCP spans FastMCP 4 / the MCP SDK 2 emit by themselves on both sides (the
trace context travels in the request's params._meta). Tags as run metadata, as in run_pydantic_ai.py.
"""

import asyncio
import os
import sys
from pathlib import Path

import harness
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

harness.otel_sdk("mcp-pydantic-ai-app")
Agent.instrument_all()

SERVER = Path(__file__).with_name("mcp_weather_server.py")
# A stdio server inherits only a few variables (PATH, HOME…): hand it the OTLP endpoint and any
# OTEL_* settings (the exporter's auth header) so that it exports where the app does.
SERVER_ENV = {"OTLP_URL": harness.OTLP_URL} | {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
# pydantic-ai gives the server 5 s to start and answer `initialize`; a busy CI box (three apps at
# once beside the suite) can take longer just to import FastMCP and OpenTelemetry in the server.
weather_server = MCPToolset(
    StdioTransport(sys.executable, [str(SERVER)], env=SERVER_ENV, keep_alive=False), init_timeout=60
)

openai_model = OpenAIChatModel(harness.OPENAI_MODEL, provider=OpenAIProvider(base_url=harness.OPENAI_BASE))
agent = Agent(openai_model, name=harness.AGENT, instructions=harness.INSTRUCTIONS, toolsets=[weather_server])

TAGS = {
    "conversation_id": harness.SESSION,
    "metadata": {"user_id": harness.USER, "session_id": harness.SESSION, "tenant_id": harness.TENANT},
}


async def main() -> None:
    with harness.scenario("plain"):
        await agent.run(harness.QUESTION, **TAGS)
    with harness.scenario("stream", streamed=True):
        async with agent.run_stream(harness.QUESTION, **TAGS) as stream:
            async for _ in stream.stream_text(delta=True):
                pass


asyncio.run(main())
harness.finish(
    tags="run metadata (metadata attribute on the agent run span); conversation_id=session",
    mcp="get_weather served by mcp_weather_server.py (FastMCP, stdio, own process and OTLP exporter)",
)
