"""The span processor that hands ended spans to the exporter in batches, off the app's thread.

Why not OTel's BatchSpanProcessor: its 2,048-span queue fills when a busy app thread starves the
export thread of the GIL (measured with a 2,048-span queue in bench/sdk_overhead.py's loop: one
export stalled 5.5 s and 2,440 of 5,000 spans were dropped). This one keeps 8,192 by default
(OTEL_BSP_* honored), clears its wake-up before it drains so a full batch always wakes the
worker, leaves spans that arrive during an export to the next round (a busy app still sends full
batches), and counts and reports every span it drops.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tokentrace.sdk.call_span import readable_spans
from tokentrace.sdk.endpoint import answers
from tokentrace.sdk.otlp_encode import encode_span

if TYPE_CHECKING:  # the exporter's imports are the slow part of init(): made on first export
    from tokentrace.sdk.exporter import DirectOTLPSpanExporter

log = logging.getLogger("tokentrace")


#: How long the export at exit may take when the endpoint answers: the exporter's own timeout.
_SLOW_ENDPOINT_S = 10.0


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        log.warning("tokentrace: %s must be a number of seconds; using %g", name, default)
        return default


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        log.warning("tokentrace: %s=%r is not a number; using %d", name, os.environ[name], default)
        return default


class BatchingSpanProcessor(SpanProcessor):
    """Queue ended spans (bounded) and export them from one worker thread, a batch at a time,
    when a batch is full or every `schedule_delay_ms`. Honors the OTEL_BSP_* variables."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        schedule_delay_ms: int | None = None,
    ) -> None:
        self.exporter = exporter
        self.max_queue_size = max_queue_size or _env_int("OTEL_BSP_MAX_QUEUE_SIZE", 8192)
        self.batch_size = min(
            max_export_batch_size or _env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), self.max_queue_size
        )
        self.schedule_delay_s = (schedule_delay_ms or _env_int("OTEL_BSP_SCHEDULE_DELAY", 5000)) / 1000
        self.dropped = 0  # spans dropped because the queue was full, since start
        self.failed = 0  # spans the exporter could not deliver (its retries spent), since start
        self._sending = 0  # spans of the batch being exported now
        self._dropped_unreported = 0
        self._queue: collections.deque[Any] = collections.deque()
        self._shutdown = False
        self._start_worker()
        # A forked child starts with an empty queue and a worker of its own.
        weak_self = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (s := weak_self()) and s._start_worker())

    @property
    def queued(self) -> int:
        """Spans waiting for the next export."""
        return len(self._queue)

    def _start_worker(self) -> None:
        # New locks too: a fork may have copied one held by the parent's worker.
        self._queue.clear()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="tokentrace-span-export", daemon=True)
        self._worker.start()

    def _queued(self, span: ReadableSpan) -> Any:
        """What the queue keeps of an ended span (the span itself)."""
        return span

    def _export(self, batch: Sequence[Any]) -> SpanExportResult:
        # tokentrace's exporter writes CallSpans as they are; another gets ReadableSpans.
        direct = getattr(self.exporter, "takes_call_spans", False)
        return self.exporter.export(batch if direct else readable_spans(batch))

    def on_end(self, span: ReadableSpan) -> None:
        if self._shutdown or not span.context.trace_flags.sampled:
            return
        self.add(self._queued(span))

    def add(self, item: Any) -> None:
        """Queue what `_export` takes (dropped, and counted, when the queue is full)."""
        if self._shutdown:
            return
        if len(self._queue) >= self.max_queue_size:
            self.dropped += 1
            self._dropped_unreported += 1
            return
        self._queue.append(item)
        if len(self._queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _work(self) -> None:
        while not self._shutdown:
            timed_out = not self._wake.wait(self.schedule_delay_s)
            # Cleared before draining: a batch filled from here on sets it again.
            self._wake.clear()
            with self._export_lock:
                self._export_queued(everything=timed_out)
        with self._export_lock:
            self._export_queued(everything=True)

    def _export_queued(self, everything: bool) -> None:
        """Export the full batches queued now, and with `everything` the partial rest; spans that
        arrive meanwhile wait for the next round, so a busy app still gets full batches. The
        caller holds the export lock."""
        queued = len(self._queue)
        while queued >= self.batch_size or (everything and queued):
            count = min(self.batch_size, queued)
            self._send([self._queue.popleft() for _ in range(count)])
            queued -= count
        if self._dropped_unreported:
            log.warning(
                "tokentrace: the span queue was full (%d spans); %d spans were dropped. The "
                "exporter cannot keep up: is the endpoint slow, or raise OTEL_BSP_MAX_QUEUE_SIZE.",
                self.max_queue_size,
                self._dropped_unreported,
            )
            self._dropped_unreported = 0

    def _send(self, batch: Sequence[Any]) -> None:
        # The exporter's own HTTP calls must not be traced (an instrumented httpx would loop).
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        delivered = False
        self._sending = len(batch)
        try:
            delivered = self._export(batch) is SpanExportResult.SUCCESS
        except Exception:  # an exporter bug must not kill the worker
            log.exception("tokentrace: exporting %d spans failed", len(batch))
        finally:
            self._sending = 0
            detach(token)
        if not delivered:
            self.failed += len(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything queued now; False when the worker held the exporter past the timeout."""
        if self._shutdown:
            return False
        if not self._export_lock.acquire(timeout=timeout_millis / 1000):
            return False
        try:
            self._export_queued(everything=True)
        finally:
            self._export_lock.release()
        return True

    def shutdown(self) -> None:
        """Export what is queued. With the endpoint down, for at most TOKENTRACE_EXIT_FLUSH_SECONDS
        (2): the exporter's retries would hold the app ~10 s at exit and log a line each. An
        endpoint that answers but is slow (a server just started) gets the exporter's 10 s. The
        spans left then are dropped, said in one line."""
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        limit = _env_float("TOKENTRACE_EXIT_FLUSH_SECONDS", 2.0)
        endpoint = getattr(self.exporter, "endpoint", None)
        if (self.queued or self._sending) and isinstance(endpoint, str) and answers(endpoint, timeout=0.5):
            limit = max(limit, _SLOW_ENDPOINT_S)
        # The exporter logs each retry; the one line below says what they would.
        exporter_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http")
        level = exporter_log.level
        exporter_log.setLevel(logging.CRITICAL)
        try:
            self._worker.join(limit)
            if self._worker.is_alive():
                log.warning(
                    "tokentrace: %d spans were not sent: the endpoint did not take them within %g s "
                    "(TOKENTRACE_EXIT_FLUSH_SECONDS).",
                    self.queued + self._sending,
                    limit,
                )
            self.exporter.shutdown()  # ends the exporter's retries, should the worker still be in them
        finally:
            exporter_log.setLevel(level)


class EncodingSpanProcessor(BatchingSpanProcessor):
    """A BatchingSpanProcessor that writes each span's OTLP bytes as it ends, on the thread that
    ended it, so the export thread only joins bytes and sends them.

    For an event loop that must answer promptly (the gateway): encoding a second's 500 spans at
    once held the GIL for ~8 ms in the export thread, long enough to delay the calls in flight;
    ~16 µs per span at its end costs the same in total and delays nothing much. The exporter
    must be a DirectOTLPSpanExporter (`export_encoded`)."""

    def __init__(self, exporter: DirectOTLPSpanExporter, **options: Any) -> None:
        super().__init__(exporter, **options)
        self.direct = exporter

    def _queued(self, span: ReadableSpan) -> Any:
        if not self.direct.sends_bytes:  # an exporter release this one cannot write bodies for
            return span
        try:
            return encode_span(span)
        except Exception:  # an attribute the direct encoder does not know: the span goes as it is
            return span

    def _export(self, batch: Sequence[Any]) -> SpanExportResult:
        return self.direct.export_encoded(batch)
