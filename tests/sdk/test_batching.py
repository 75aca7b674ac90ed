"""The SDK's batching span processor: nothing lost at an app's pace, bounded when the exporter stalls."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from tokentrace.sdk.batching import BatchingSpanProcessor


class Recorder(SpanExporter):
    """Keeps what it is given; `delay_s` models the HTTP round trip, `gate` a stalled endpoint."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None, fail_first: int = 0):
        self.names: list[str] = []
        self.batches: list[int] = []
        self.delay_s = delay_s
        self.gate = gate
        self.fail_first = fail_first
        self.shut = False

    def export(self, spans) -> SpanExportResult:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("exporter bug")
        time.sleep(self.delay_s)
        self.names.extend(span.name for span in spans)
        self.batches.append(len(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


def _tracer(processor: BatchingSpanProcessor, **kwargs):
    provider = TracerProvider(**kwargs)
    provider.add_span_processor(processor)
    return provider.get_tracer("test")


def test_a_busy_app_loses_nothing_and_gets_full_batches():
    # An app ending a span every ~0.1 ms of CPU while each export takes 3 ms: every span
    # arrives, in full batches (spans that arrive during an export wait for the next round
    # rather than going out in a stream of tiny requests).
    exporter = Recorder(delay_s=0.003)
    processor = BatchingSpanProcessor(exporter, max_queue_size=2048, max_export_batch_size=256)
    tracer = _tracer(processor)
    for i in range(6000):
        tracer.start_span(f"s{i}").end()
        busy_until = time.perf_counter() + 0.0001
        while time.perf_counter() < busy_until:
            pass
    assert processor.force_flush()
    assert processor.dropped == 0
    assert sorted(exporter.names) == sorted(f"s{i}" for i in range(6000))
    assert max(exporter.batches) == 256
    assert len(exporter.batches) <= 6000 // 256 + 10
    processor.shutdown()


def test_a_stalled_exporter_bounds_the_queue_and_the_drop_is_reported_once(caplog):
    gate = threading.Event()
    exporter = Recorder(gate=gate)
    processor = BatchingSpanProcessor(exporter, max_queue_size=100, max_export_batch_size=10)
    tracer = _tracer(processor)
    for _ in range(10):  # a full batch: the worker takes it and stalls in export
        tracer.start_span("warm").end()
    deadline = time.monotonic() + 5
    while len(processor._queue):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for i in range(130):
        tracer.start_span(f"q{i}").end()
    assert processor.dropped == 30  # the queue holds 100; the other 30 are counted, not kept
    with caplog.at_level(logging.WARNING, logger="tokentrace"):
        gate.set()
        assert processor.force_flush()
    warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1 and "full (100 spans); 30 spans were dropped" in warnings[0]
    assert [n for n in exporter.names if n.startswith("q")] == [f"q{i}" for i in range(100)]
    processor.shutdown()


def test_an_exporter_that_raises_keeps_the_worker_alive(caplog):
    exporter = Recorder(fail_first=1)
    processor = BatchingSpanProcessor(exporter, max_export_batch_size=5, schedule_delay_ms=20)
    tracer = _tracer(processor)
    with caplog.at_level(logging.ERROR, logger="tokentrace"):
        for i in range(5):
            tracer.start_span(f"lost{i}").end()  # a full batch: the worker exports it, and it raises
        deadline = time.monotonic() + 5
        while not any("exporting 5 spans failed" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.01)
    tracer.start_span("after").end()
    deadline = time.monotonic() + 5
    while "after" not in exporter.names:  # the scheduled export, from the same worker
        assert time.monotonic() < deadline
        time.sleep(0.01)
    processor.shutdown()


def test_unsampled_spans_are_not_queued():
    exporter = Recorder()
    processor = BatchingSpanProcessor(exporter)
    tracer = _tracer(processor, sampler=ALWAYS_OFF)
    tracer.start_span("unsampled").end()
    processor.force_flush()
    assert exporter.names == []
    processor.shutdown()


def test_shutdown_exports_the_rest_and_then_refuses():
    exporter = Recorder()
    processor = BatchingSpanProcessor(exporter, schedule_delay_ms=60_000)
    tracer = _tracer(processor)
    for i in range(7):
        tracer.start_span(f"s{i}").end()
    processor.shutdown()
    assert exporter.names == [f"s{i}" for i in range(7)]
    assert exporter.shut
    tracer.start_span("late").end()
    assert "late" not in exporter.names
    assert processor.force_flush() is False


@pytest.mark.parametrize(("value", "expected"), [("64", 64), ("lots", 8192)])
def test_queue_size_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", value)
    processor = BatchingSpanProcessor(Recorder())
    assert processor.max_queue_size == expected
    processor.shutdown()
