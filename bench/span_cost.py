"""What recording one LLM call's span costs: the OTel SDK span against tokentrace's `CallSpan`
(sdk/call_span.py, what `init()` uses when it owns the provider), warm (a tight loop) and cold
(the caches cooled between calls, as ~1.2-1.7 ms of openai client work between two spans does).

    .venv/bin/python bench/span_cost.py

Both paths do what the instrumentation does per call: start with the request's attributes
(and the tags from baggage), make the span current and restore the context, add the response's
attributes twice, end (through tokentrace's tag and batching processors, to an exporter that
drops).
"""

from __future__ import annotations

import time

from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from tokentrace.sdk import call_span
from tokentrace.sdk.batching import BatchingSpanProcessor
from tokentrace.sdk.tags import TagSpanProcessor

START = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 100,
    "gen_ai.request.stream": False,
}
IDENTITY = {
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-bench",
    "gen_ai.response.finish_reasons": ["stop"],
}
USAGE = {
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 9,
    "gen_ai.usage.total_tokens": 129,
    "gen_ai.usage.cache_read.input_tokens": 64,
}


class _Drop(SpanExporter):
    def export(self, spans) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def main() -> None:
    provider = TracerProvider()
    tags, batcher = (
        TagSpanProcessor(),
        BatchingSpanProcessor(_Drop(), max_queue_size=500_000),
    )  # nothing dropped
    provider.add_span_processor(tags)
    provider.add_span_processor(batcher)
    call_span.configure(provider, tags, batcher)
    tracer = provider.get_tracer("bench")

    def sdk_span() -> None:
        span = tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=START)
        with trace.use_span(span, end_on_exit=False):
            pass
        span.set_attributes(IDENTITY)
        span.set_attributes(USAGE)
        span.end()

    def call_span_path() -> None:
        span = call_span.start("chat gpt-4o-mini", dict(START))
        context.detach(context.attach(trace.set_span_in_context(span)))
        call_span.put(span, dict(IDENTITY))
        call_span.put(span, dict(USAGE))
        span.end()

    junk = [str(i) * 3 for i in range(200_000)]

    def cool() -> int:
        return sum(len(x) for x in junk[::7])

    print("µs per span (median of 3 runs)\n")
    print("| path | warm | cold |\n|---|---|---|")
    for name, make in (("OTel SDK span", sdk_span), ("tokentrace CallSpan", call_span_path)):
        warm, cold = [], []
        for _ in range(3):
            for _ in range(2000):
                make()
            n = 20_000
            started = time.perf_counter_ns()
            for _ in range(n):
                make()
            warm.append((time.perf_counter_ns() - started) / n / 1000)
            total, n = 0, 3000
            for _ in range(n):
                cool()
                started = time.perf_counter_ns()
                make()
                total += time.perf_counter_ns() - started
            cold.append(total / n / 1000)
        print(f"| {name} | {sorted(warm)[1]:.1f} | {sorted(cold)[1]:.1f} |")
    provider.shutdown()


if __name__ == "__main__":
    main()
