"""The MCP server behind run_mcp_openai_agents_openinference.py: the MCP Python SDK's own MCPServer
(mcp 2; FastMCP before it was renamed) with the one tool get_weather, over stdio.

Started by the agent app as its own process; it exports its spans (the SDK's built-in
OpenTelemetry SERVER spans) to the OTLP endpoint in the OTLP_URL environment variable, with
OpenInference's MCPInstrumentor on as its docs say (both sides). A SimpleSpanProcessor exports each
span as it ends, so nothing is lost when the client stops the process.
"""

import os

from mcp.server.mcpserver import MCPServer
from openinference.instrumentation.mcp import MCPInstrumentor
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider(resource=Resource.create({"service.name": "mcp-sdk-weather-server"}))
provider.add_span_processor(
    SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{os.environ['OTLP_URL']}/v1/traces"))
)
trace.set_tracer_provider(provider)
MCPInstrumentor().instrument()

mcp = MCPServer("weather")


@mcp.tool()
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny and 21 degrees in {city}."


if __name__ == "__main__":
    mcp.run()
