"""The MCP server behind run_mcp_*.py: a FastMCP server with the one tool get_weather, over stdio.

Started by the agent app as its own process; it exports its spans (FastMCP's native OpenTelemetry
spans) to the OTLP endpoint in the OTLP_URL environment variable. A SimpleSpanProcessor exports
each span as it ends, so nothing is lost when the client stops the process.
"""

import os

from fastmcp import FastMCP
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider(resource=Resource.create({"service.name": "mcp-weather-server"}))
provider.add_span_processor(
    SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{os.environ['OTLP_URL']}/v1/traces"))
)
trace.set_tracer_provider(provider)

mcp = FastMCP("weather")


@mcp.tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny and 21 degrees in {city}."


if __name__ == "__main__":
    mcp.run()
