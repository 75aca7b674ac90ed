"""Flood a server through the stock OTel OTLP exporters; count what was delivered and what was given up on."""

# The stock exporter keeps its own retries and honours Retry-After. Used by
# tests/e2e/test_overload.py and bench/soak.py.

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

_RESOURCE = Resource.create({"service.name": "flood"})


def _batch(size: int) -> list[ReadableSpan]:
    """`size` spans: half roots, half chat calls under them, each with usage."""
    spans = []
    now = time.time_ns()
    for _ in range(size // 2):
        trace_id = random.getrandbits(128) or 1
        root = SpanContext(trace_id, random.getrandbits(64) or 1, False, TraceFlags(1))
        call = SpanContext(trace_id, random.getrandbits(64) or 1, False, TraceFlags(1))
        spans.append(
            ReadableSpan(
                "request",
                root,
                None,
                resource=_RESOURCE,
                attributes={"tenant.id": "t1"},
                start_time=now,
                end_time=now + 5_000_000,
                kind=SpanKind.SERVER,
            )
        )
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.output_tokens": 30,
        }
        spans.append(
            ReadableSpan(
                "chat gpt-4o-mini",
                call,
                root,
                resource=_RESOURCE,
                attributes=attrs,
                start_time=now,
                end_time=now + 4_000_000,
                kind=SpanKind.CLIENT,
            )
        )
    return spans


def span_key(s: ReadableSpan) -> str:
    """trace_id + span_id in hex, as the export API writes them."""
    return f"{s.context.trace_id:032x}{s.context.span_id:016x}"


@dataclass
class Flood:
    delivered: set[str] = field(default_factory=set)  # span keys whose export succeeded
    failed: set[str] = field(default_factory=set)  # span keys the exporter gave up on
    exports: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def flood(
    url: str,
    senders: int,
    seconds: float,
    batch: int = 200,
    timeout_s: float = 60,
    grpc_port: int | None = None,
) -> Flood:
    """Run `senders` threads exporting `batch`-span requests back to back for `seconds`, over
    OTLP/HTTP to `url`, or over OTLP/gRPC to `grpc_port` on the same host when given."""
    result = Flood()
    stop_at = time.monotonic() + seconds
    # The exporter logs each retry as a warning; hundreds of them say nothing here.
    logging.getLogger("opentelemetry.exporter.otlp.proto").setLevel(logging.ERROR)

    def exporter_() -> OTLPSpanExporter | GrpcExporter:
        if grpc_port is None:
            return OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=timeout_s)
        return GrpcExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=timeout_s)

    def send() -> None:
        exporter = exporter_()
        while time.monotonic() < stop_at:
            spans = _batch(batch)
            outcome = exporter.export(spans)
            keys = {span_key(s) for s in spans}
            with result.lock:
                result.exports += 1
                (result.delivered if outcome is SpanExportResult.SUCCESS else result.failed).update(keys)
        exporter.shutdown()

    threads = [threading.Thread(target=send, name=f"flood-{i}") for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident memory (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid} ({os.uname().sysname})")
