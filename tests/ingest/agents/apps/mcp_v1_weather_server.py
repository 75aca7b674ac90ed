"""The MCP server behind run_mcp_openai_agents_traceloop.py: the MCP Python SDK 1.x FastMCP server
(mcp.server.fastmcp; no OpenTelemetry of its own) with the one tool get_weather, over stdio.

Started by the agent app as its own process; it exports its spans (Traceloop's McpInstrumentor, on
both sides as its docs say) to the OTLP endpoint in the OTLP_URL environment variable. A
SimpleSpanProcessor exports each span as it ends, so nothing is lost when the client stops it.
"""

import os

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.mcp import McpInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider(resource=Resource.create({"service.name": "mcp-v1-weather-server"}))
provider.add_span_processor(
    SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{os.environ['OTLP_URL']}/v1/traces"))
)
trace.set_tracer_provider(provider)
McpInstrumentor().instrument()  # before mcp is imported: it wraps mcp.server.stdio.stdio_server

from mcp.server.fastmcp import FastMCP  # noqa: E402

mcp = FastMCP("weather")


@mcp.tool()
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny and 21 degrees in {city}."


if __name__ == "__main__":
    mcp.run()
