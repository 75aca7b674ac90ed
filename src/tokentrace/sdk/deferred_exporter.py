"""The app's span exporter, built on its first export: the OTLP exporter's imports (protobuf,
requests: ~0.2 s) are paid in the export thread, not in `tokentrace.init()`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class DeferredExporter(SpanExporter):
    """A DirectOTLPSpanExporter (sdk/exporter.py) to `endpoint`, made when first needed."""

    #: Takes tokentrace's call spans as they are (sdk/batching.py), as the exporter it makes does.
    takes_call_spans = True

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None) -> None:
        self.endpoint = endpoint
        self._headers = headers
        self._made: SpanExporter | None = None
        self._lock = threading.Lock()
        self._shut = False

    def _exporter(self) -> SpanExporter:
        with self._lock:
            if self._made is None:
                from tokentrace.sdk.exporter import DirectOTLPSpanExporter

                self._made = DirectOTLPSpanExporter(endpoint=self.endpoint, headers=self._headers)
            return self._made

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self._shut:
            return SpanExportResult.FAILURE
        exporter = self._exporter()
        if self._shut:  # shut down while the exporter was being made: end its retries too
            exporter.shutdown()
        return exporter.export(spans)

    def shutdown(self) -> None:
        self._shut = True
        with self._lock:
            made = self._made
        if made is not None:
            made.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
