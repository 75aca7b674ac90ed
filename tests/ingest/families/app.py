"""One application, instrumented by another library's convention family, one run per family.

    python tests/ingest/families/app.py FAMILY PROVIDER_URL OTLP_URL

It runs in that family's own venv (made by the Makefile from families/requirements/), never
imports tokentrace, drives the real `openai` and `anthropic` SDKs against the simulated
provider, and exports over OTLP the way the family's users do. It prints one JSON line: per
scenario, the trace id and what the provider answered (the truth the test checks against).

The tags user u42, session s-9 and tenant acme are set the family's own way.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FAMILY, PROVIDER_URL, OTLP_URL = sys.argv[1:4]
USER, SESSION, TENANT = "u42", "s-9", "acme"
# A fresh prefix per run, so the provider's prompt cache starts cold for every family.
NONCE = uuid.uuid4().hex[:8]


# --- each family's setup: returns the root-span context manager and a flush ------------


def _otel_sdk(logs: bool = False) -> Callable[[], None]:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"{FAMILY}-app"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{OTLP_URL}/v1/traces")))
    trace.set_tracer_provider(provider)
    flushes = [provider.force_flush]
    if logs:
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{OTLP_URL}/v1/logs"))
        )
        set_logger_provider(logger_provider)
        flushes.append(logger_provider.force_flush)
    return lambda: [flush() for flush in flushes]


def _auth_headers() -> dict[str, str]:
    key = os.environ.get("TOKENTRACE_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


@contextlib.contextmanager
def _root_with_tags(name: str) -> Iterator[None]:
    """Our convention for apps whose library has no tag API: the tags on the root span only."""
    from opentelemetry import trace

    attributes = {"user.id": USER, "session.id": SESSION, "tenant.id": TENANT}
    with trace.get_tracer("app").start_as_current_span(name, attributes=attributes):
        yield


def setup_otel(latest: bool = False):
    if latest:
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_AND_EVENT"
        os.environ["OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT"] = "true"
        os.environ["ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"] = "content"
    flush = _otel_sdk(logs=latest)
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    return _runner(_root_with_tags), flush


def setup_openinference():
    flush = _otel_sdk()
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.anthropic import AnthropicInstrumentor
    from openinference.instrumentation.openai import OpenAIInstrumentor

    OpenAIInstrumentor().instrument()
    AnthropicInstrumentor().instrument()

    @contextlib.contextmanager
    def root(name: str) -> Iterator[None]:
        from opentelemetry import trace

        with (
            trace.get_tracer("app").start_as_current_span(
                name, attributes={"openinference.span.kind": "CHAIN"}
            ),
            using_attributes(
                user_id=USER, session_id=SESSION, metadata={"tenant_id": TENANT}, tags=["support"]
            ),
        ):
            yield

    return _runner(root), flush


def setup_openlit():
    import openlit

    pricing = Path(__file__).with_name("openlit_pricing.json")
    openlit.init(
        otlp_endpoint=OTLP_URL,
        application_name=f"{FAMILY}-app",
        environment="test",
        pricing_json=str(pricing),
        otlp_headers=_auth_headers() or None,
        disable_metrics=True,
        capture_message_content=True,
    )
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return _runner(_root_with_tags), provider.force_flush


def setup_traceloop():
    os.environ["TRACELOOP_TELEMETRY"] = "false"
    from traceloop.sdk import Traceloop
    from traceloop.sdk.decorators import workflow

    Traceloop.init(
        app_name=f"{FAMILY}-app",
        api_endpoint=OTLP_URL,
        headers=_auth_headers(),
        disable_batch=True,
        telemetry_enabled=False,
    )

    def run(name: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        @workflow(name=name)
        def handle_request() -> dict[str, Any]:
            Traceloop.set_association_properties(
                {"user_id": USER, "session_id": SESSION, "tenant_id": TENANT}
            )
            return body()

        return handle_request()

    from opentelemetry import trace

    return run, trace.get_tracer_provider().force_flush


def setup_langfuse():
    from langfuse import Langfuse, propagate_attributes
    from langfuse.openai import openai  # noqa: F401  (importing it wraps the openai SDK)

    secret = os.environ.get("TOKENTRACE_KEY", "sk-lf-test")  # the project's API key
    client = Langfuse(public_key="pk-lf-test", secret_key=secret, host=OTLP_URL, flush_interval=0.5)

    @contextlib.contextmanager
    def root(name: str) -> Iterator[None]:
        with (
            client.start_as_current_observation(as_type="span", name=name),
            propagate_attributes(
                user_id=USER, session_id=SESSION, metadata={"tenant_id": TENANT}, tags=["support"]
            ),
        ):
            yield

    return _runner(root), client.flush


def setup_logfire():
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = OTLP_URL
    import logfire

    logfire.configure(send_to_logfire=False, service_name=f"{FAMILY}-app", console=False, metrics=False)
    logfire.instrument_openai()
    logfire.instrument_anthropic()

    @contextlib.contextmanager
    def root(name: str) -> Iterator[None]:
        with (
            logfire.set_baggage(user_id=USER, session_id=SESSION, tenant_id=TENANT),
            logfire.span("handle_request {scenario}", scenario=name, user_id=USER, session_id=SESSION),
        ):
            yield

    from opentelemetry import trace

    return _runner(root), trace.get_tracer_provider().force_flush


SETUPS = {
    "otel": setup_otel,
    "otel-latest": lambda: setup_otel(latest=True),
    "openinference": setup_openinference,
    "openlit": setup_openlit,
    "traceloop": setup_traceloop,
    "langfuse": setup_langfuse,
    "logfire": setup_logfire,
}


def _runner(root: Callable[[str], contextlib.AbstractContextManager]) -> Callable:
    """A root-span context manager as a runner: run(name, body) runs body inside it."""

    def run(name: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with root(name):
            return body()

    return run


# --- scenarios: each is one user request; returns what the provider answered ----------


def _usage(obj: Any) -> dict[str, Any]:
    usage = getattr(obj, "usage", None)
    return usage.model_dump() if usage is not None else {}


def chat(oa, an) -> dict[str, Any]:
    reply = oa.chat.completions.create(
        model="gpt-4o-mini",
        temperature=0.3,
        max_tokens=200,
        user=USER,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Where is my refund?"},
        ],
    )
    return {
        "usage": _usage(reply),
        "model": reply.model,
        "finish_reason": reply.choices[0].finish_reason,
        "response_id": reply.id,
    }


def stream(oa, an) -> dict[str, Any]:
    chunks = oa.chat.completions.create(
        model="gpt-4o-mini",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Tell me about shipping times."}],
    )
    usage, model, finish, ident = {}, None, None, None
    for chunk in chunks:
        model, ident = chunk.model, chunk.id
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
    return {"usage": usage, "model": model, "finish_reason": finish, "response_id": ident}


def tool(oa, an) -> dict[str, Any]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order",
                "parameters": {
                    "type": "object",
                    "properties": {"order_id": {"type": "string"}},
                    "required": ["order_id"],
                },
            },
        }
    ]
    reply = oa.chat.completions.create(
        model="gpt-4o",
        tools=tools,
        tool_choice="required",
        messages=[{"role": "user", "content": "Where is order A-1?"}],
    )
    return {
        "usage": _usage(reply),
        "model": reply.model,
        "finish_reason": reply.choices[0].finish_reason,
        "response_id": reply.id,
        "tool_name": reply.choices[0].message.tool_calls[0].function.name,
    }


def embeddings(oa, an) -> dict[str, Any]:
    reply = oa.embeddings.create(model="text-embedding-3-small", input="refund policy")
    return {"usage": _usage(reply), "model": reply.model}


def _cached_system(breakpoints: int) -> list[dict[str, Any]]:
    blocks = []
    for i in range(breakpoints):
        text = f"{NONCE} policy part {i}: " + " ".join(f"rule{i}x{n}" for n in range(1100))
        blocks.append({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}})
    return blocks


def _warm_cache(an) -> None:
    # Caches the first block (outside any scenario trace) so the next call reads it and writes the second.
    an.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        system=_cached_system(1),
        messages=[{"role": "user", "content": "hi"}],
    )


def _message_facts(message: Any) -> dict[str, Any]:
    return {
        "usage": message.usage.model_dump(),
        "model": message.model,
        "finish_reason": message.stop_reason,
        "response_id": message.id,
    }


def anthropic_cache(oa, an) -> dict[str, Any]:
    reply = an.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=200,
        system=_cached_system(2),
        messages=[{"role": "user", "content": "Summarize the policy."}],
    )
    return _message_facts(reply)


def anthropic_stream(oa, an) -> dict[str, Any]:
    with an.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=200,
        system=_cached_system(3),
        messages=[{"role": "user", "content": "Summarize the policy again."}],
    ) as events:
        for _ in events:
            pass
        return _message_facts(events.get_final_message())


def rate_limited(oa, an) -> dict[str, Any]:
    import openai

    try:
        oa.with_options(max_retries=0).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-simulate": "error=429; retry_after_ms=10"},
        )
    except openai.RateLimitError as exc:
        return {"error": type(exc).__name__, "status": exc.status_code}
    raise AssertionError("the provider was asked to answer 429")


def anthropic_rate_limited(oa, an) -> dict[str, Any]:
    import anthropic

    try:
        an.with_options(max_retries=0).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-simulate": "error=429; retry_after_ms=10"},
        )
    except anthropic.RateLimitError as exc:
        return {"error": type(exc).__name__, "status": exc.status_code}
    raise AssertionError("the provider was asked to answer 429")


SCENARIOS = {
    "chat": chat,
    "stream": stream,
    "tool": tool,
    "embeddings": embeddings,
    "anthropic_cache": anthropic_cache,
    "anthropic_stream": anthropic_stream,
    "rate_limited": rate_limited,
    "anthropic_rate_limited": anthropic_rate_limited,
}


def main() -> None:
    run, flush = SETUPS[FAMILY]()
    import anthropic
    import openai
    from opentelemetry import trace

    oa = openai.OpenAI(base_url=f"{PROVIDER_URL}/v1", api_key="sk-test", max_retries=0)
    an = anthropic.Anthropic(base_url=PROVIDER_URL, api_key="sk-ant-test", max_retries=0)
    _warm_cache(an)
    facts: dict[str, Any] = {"family": FAMILY, "scenarios": {}}
    for name, scenario in SCENARIOS.items():

        def body(scenario: Callable = scenario) -> dict[str, Any]:
            trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
            return {"trace_id": trace_id, **scenario(oa, an)}

        facts["scenarios"][name] = run(f"handle_request {name}", body)
    flush()
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
