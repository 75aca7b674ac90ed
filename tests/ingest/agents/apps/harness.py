"""What every agent app shares (it runs in a framework's venv and never imports tokentrace).

    python apps/run_NAME.py PROVIDER_URL OTLP_URL

Each scenario is one agent run: the question below, one tool (`get_weather`), so two model calls
(a tool call, then the answer once the tool result is in) and one tool run. `scenario()` notes
which answers of the provider's ledger the run used; `finish()` prints the facts as one JSON line.
Tags are user u42, session s-9, tenant acme, set the framework's own way where it has one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

PROVIDER_URL, OTLP_URL = sys.argv[1:3]
OPENAI_BASE = f"{PROVIDER_URL}/v1"
USER, SESSION, TENANT = "u42", "s-9", "acme"
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
AGENT = "weather_agent"
TOOL = "get_weather"
QUESTION = "What is the weather in Paris? Use the tool."
INSTRUCTIONS = "You answer weather questions. Always call get_weather first."
TAG_ATTRIBUTES = {"user.id": USER, "session.id": SESSION, "tenant.id": TENANT}

os.environ.setdefault("OPENAI_API_KEY", "sk-simulated")
os.environ.setdefault("OPENAI_BASE_URL", OPENAI_BASE)
os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-simulated")
os.environ.setdefault("ANTHROPIC_BASE_URL", PROVIDER_URL)

_scenarios: list[dict[str, Any]] = []
_flushes: list[Callable[[], Any]] = []


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny and 21 degrees in {city}."


def ledger() -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{PROVIDER_URL}/_simulate/ledger", timeout=10) as answer:
        return json.load(answer)


@contextlib.contextmanager
def scenario(name: str, provider: str = "openai", streamed: bool = False, **facts: Any) -> Iterator[None]:
    """One agent run: the ledger's answers between its start and end are the run's calls."""
    start = len(ledger())
    yield
    _scenarios.append(
        {
            "name": name,
            "provider": provider,
            "streamed": streamed,
            "agent": facts.pop("agent", AGENT),
            "tool": facts.pop("tool", TOOL),
            "calls": [start, len(ledger())],
            **facts,
        }
    )


def otel_sdk(service: str) -> Any:
    """A global TracerProvider exporting OTLP/HTTP protobuf to the sink or server (the way most
    frameworks' users set one up). Returns the provider."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{OTLP_URL}/v1/traces")))
    trace.set_tracer_provider(provider)
    _flushes.append(provider.force_flush)
    return provider


def on_flush(flush: Callable[[], Any]) -> None:
    _flushes.append(flush)


@contextlib.contextmanager
def tagged_root(name: str, **attributes: Any) -> Iterator[None]:
    """For frameworks with no tag API: the tags on a root span of the app's own."""
    from opentelemetry import trace

    with trace.get_tracer("app").start_as_current_span(name, attributes={**TAG_ATTRIBUTES, **attributes}):
        yield


def finish(**notes: Any) -> None:
    for flush in _flushes:
        flush()
    print(json.dumps({"scenarios": _scenarios, "ledger": ledger(), **notes}))
