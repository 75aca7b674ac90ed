"""The SDK's span encoding: the official OTLP protobuf encoder vs tokentrace's direct one.

    .venv/bin/python bench/otlp_encode.py [--spans 512] [--repeat 20]

Encodes batches of finished spans shaped like the SDK's LLM spans (14 attributes, one event)
with both encoders, in this process, and prints µs per span. This is the export thread's CPU
per LLM call, the part of the SDK's overhead that competes with the app for the GIL.
"""

from __future__ import annotations

import argparse
import time

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tokentrace.sdk.otlp_encode import encode_spans


def _spans(count: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tokentrace.sdk")
    for i in range(count):
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.response.id": f"chatcmpl-{i:024x}",
            "gen_ai.usage.input_tokens": 100 + i,
            "gen_ai.usage.output_tokens": 20 + i % 7,
            "gen_ai.usage.cache_read.input_tokens": 64,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.request.stream": False,
            "tokentrace.tenant_id": f"tenant-{i % 5}",
            "user.id": f"u{i % 50}",
            "tokentrace.feature": "refund-chat",
        }
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes=attributes) as span:
            span.add_event("gen_ai.choice", {"index": 0})
    return list(memory.get_finished_spans())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    spans = _spans(args.spans)
    rows = []
    for name, encode in (
        ("official OTel encoder", lambda: official(spans).SerializePartialToString()),
        ("tokentrace direct (`sdk/otlp_encode.py`)", lambda: encode_spans(spans)),
    ):
        encode()  # warm caches
        best = min(_timed(encode) for _ in range(args.repeat))
        rows.append((name, best / len(spans) * 1e6))
    print(f"{args.spans}-span batches, best of {args.repeat}")
    print("| encoder | µs per span |\n|---|---|")
    for name, micros in rows:
        print(f"| {name} | {micros:.1f} |")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
