"""`tokentrace.init()`: set up (or join) the OTel tracer provider that exports to tokentrace."""

from __future__ import annotations

import os
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from tokentrace.redaction import redact_defaults
from tokentrace.sdk import call_span, content, scores
from tokentrace.sdk.batching import BatchingSpanProcessor
from tokentrace.sdk.content import DEFAULT_MAX_CHARS
from tokentrace.sdk.deferred_exporter import DeferredExporter
from tokentrace.sdk.endpoint import signal_endpoint, warn_if_unreachable
from tokentrace.sdk.tags import TagSpanProcessor
from tokentrace.sdk.threads import propagate_to_threads

_provider: TracerProvider | None = None


def init(
    service_name: str | None = None,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    instrument: tuple[str, ...] = ("openai", "anthropic"),
    capture_content: bool | None = None,
    redact: Callable[[str], str] | None = redact_defaults,
    max_content_chars: int = DEFAULT_MAX_CHARS,
    exporter: SpanExporter | None = None,
) -> TracerProvider:
    """Start tracing to tokentrace. Idempotent: a second call returns the same provider.

    The endpoint defaults to OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, then http://127.0.0.1:4318.
    An app that already set an SDK TracerProvider keeps it: tokentrace adds its processors.
    The openai and anthropic SDKs are instrumented (anthropic's own built-in span is turned
    off for clients made afterwards, so one call is one span).

    Prompts and completions are recorded only with `capture_content=True` (or
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true); every text then goes through
    `redact` (by default: emails, API keys, card numbers; None sends text as is) and is cut
    to `max_content_chars`.
    """
    global _provider
    if _provider is not None:
        return _provider
    enabled = capture_content if capture_content is not None else content.enabled_by_env()
    content.configure(content.ContentPolicy(enabled, redact, max_content_chars))
    traces_endpoint = signal_endpoint("traces", endpoint)
    key = api_key or os.environ.get("TOKENTRACE_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else None

    existing = trace.get_tracer_provider()
    if isinstance(existing, TracerProvider):
        provider = existing
    else:
        attributes = {"service.name": service_name or os.environ.get("OTEL_SERVICE_NAME", "unknown_service")}
        if service_version or os.environ.get("TOKENTRACE_SERVICE_VERSION"):
            attributes["service.version"] = service_version or os.environ["TOKENTRACE_SERVICE_VERSION"]
        env = environment or os.environ.get("TOKENTRACE_ENVIRONMENT")
        if env:
            attributes["deployment.environment.name"] = env
        provider = TracerProvider(resource=Resource.create(attributes))
        trace.set_tracer_provider(provider)
    tags = TagSpanProcessor()
    batcher = BatchingSpanProcessor(exporter or DeferredExporter(traces_endpoint, headers))
    provider.add_span_processor(tags)
    provider.add_span_processor(batcher)
    # Calls get tokentrace's own span where it is equivalent; with processors of the app's
    # on the provider (joined, or added later) they get the SDK's (call_span.start).
    call_span.configure(provider, tags, batcher)
    # Scores travel as OTLP log records (evaluation events), to the same server.
    scores.configure(scores.Destination(signal_endpoint("logs", endpoint), headers, provider.resource))
    if exporter is None:
        warn_if_unreachable(traces_endpoint, headers)
    propagate_to_threads()

    from tokentrace.sdk.instrumentors import instrument as install

    install(instrument)
    _provider = provider
    return provider


def flush(timeout_s: float = 30) -> bool:
    """Export what is pending now (also done at exit)."""
    provider = _provider or trace.get_tracer_provider()
    force = getattr(provider, "force_flush", None)
    done = bool(force(int(timeout_s * 1000))) if force else True
    return scores.flush(int(timeout_s * 1000)) and done


def shutdown() -> None:
    """Flush and stop exporting."""
    global _provider
    call_span.unconfigure()
    if _provider is not None:
        _provider.shutdown()
        _provider = None
    scores.shutdown()
