"""Batch jobs read back through the SDKs: each result an app reads becomes a span of its own.

A batch's tags are the tokentrace.context() it was created in (kept by batch id in this process);
its results, read with the SDKs' own helpers (OpenAI: `files.content` of the output or error file
`batches.retrieve` named; Anthropic: `messages.batches.results`), each become a CLIENT span
with the call's usage, billed at the batch rate (service tier `batch`), its `custom_id` and the
batch's tags, under whatever span is current where the app reads them. The span lasts no time:
the app never waited for the call, only read its answer. A result read twice is recorded twice
with the provider's response id, which the server counts once (duplicates).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from opentelemetry.trace import SpanKind, Status, StatusCode

from tokentrace.sdk.instrumentors.calls import SUPPRESS, _tracer
from tokentrace.sdk.tags import tag_attributes

_KEEP = 10_000  # batches and files remembered, the oldest forgotten first
BATCH_TIER = "tokentrace.service_tier"


class _Book:
    """Batches created in this process (their tags and endpoint) and the files that hold their
    results."""

    def __init__(self) -> None:
        self.batches: OrderedDict[str, tuple[dict[str, str], str | None]] = OrderedDict()
        self.files: OrderedDict[str, str] = OrderedDict()
        self.ends: OrderedDict[str, int] = OrderedDict()
        self.lock = threading.Lock()

    def created(self, batch_id: Any, endpoint: Any) -> None:
        if isinstance(batch_id, str):
            with self.lock:
                self.batches[batch_id] = (tag_attributes(), endpoint if isinstance(endpoint, str) else None)
                if len(self.batches) > _KEEP:
                    self.batches.popitem(last=False)

    def looked_up(self, batch: Any) -> None:
        batch_id = getattr(batch, "id", None)
        for name in ("output_file_id", "error_file_id"):
            file_id = getattr(batch, name, None)
            if isinstance(file_id, str) and isinstance(batch_id, str):
                with self.lock:
                    self.files[file_id] = batch_id
                    if len(self.files) > _KEEP:
                        self.files.popitem(last=False)

    def ended(self, batch: Any) -> None:
        """Note when a batch ended (Anthropic's `ended_at`): its results start there, the same
        instant each time they are read."""
        at, batch_id = getattr(batch, "ended_at", None), getattr(batch, "id", None)
        if isinstance(at, datetime) and isinstance(batch_id, str):
            with self.lock:
                self.ends[batch_id] = int(at.timestamp() * 1_000_000) * 1000
                if len(self.ends) > _KEEP:
                    self.ends.popitem(last=False)

    def tags(self, batch_id: str) -> dict[str, str]:
        return self.batches.get(batch_id, ({}, None))[0]

    def endpoint(self, batch_id: str) -> str | None:
        return self.batches.get(batch_id, ({}, None))[1]


book = _Book()


def noting(note: Callable[[Any, tuple, dict], None]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """wrapt wrappers (sync, async) of an SDK method that call it, then `note(result, args,
    kwargs)`: how the batch helpers are watched."""

    def sync(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = wrapped(*args, **kwargs)
        note(result, args, kwargs)
        return result

    async def asynchronous(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        result = await wrapped(*args, **kwargs)
        note(result, args, kwargs)
        return result

    return sync, asynchronous


def suppressed() -> bool:
    from opentelemetry import context

    return bool(context.get_value(SUPPRESS))


def record(
    provider: str,
    operation: str,
    batch_id: str,
    custom_id: str,
    start_ns: int,
    fill: Callable[[Any], Any] | None,
    error: str | None = None,
) -> None:
    """One result's span: `fill` puts the answer's id and usage on it and returns its model; a
    failed request has `error` (its error type) instead."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "tokentrace.batch.id": batch_id,
        "tokentrace.batch.custom_id": custom_id,
    }
    span = _tracer.start_span(operation, kind=SpanKind.CLIENT, attributes=attributes, start_time=start_ns)
    # the batch's own tags win over those of the code that reads its results
    span.set_attributes(book.tags(batch_id))
    model = fill(span) if fill is not None else None
    if isinstance(model, str):
        span.set_attribute("gen_ai.request.model", model)
        span.update_name(f"{operation} {model}")
    span.set_attribute(BATCH_TIER, "batch")  # billed at the batch rate, whatever the answer says
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=start_ns)


def _result(line: bytes) -> dict[str, Any] | None:
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return item if isinstance(item, dict) and isinstance(item.get("custom_id"), str) else None


def jsonl(data: bytes) -> list[dict[str, Any]] | None:
    """A results file's lines, or None when it is no batch's results (told by its first line:
    any file the app downloads passes here)."""
    if _result(data[: data.find(b"\n")] if b"\n" in data else data) is None:
        return None
    lines = []
    for line in data.splitlines():
        if not line.strip():
            continue
        item = _result(line)
        if item is None:
            return None
        lines.append(item)
    return lines


def started(created: Any) -> int:
    """A result's start: the answer's `created` (Unix seconds) where it has one, else now."""
    if isinstance(created, int) and not isinstance(created, bool) and created > 0:
        return created * 1_000_000_000
    return time.time_ns()
