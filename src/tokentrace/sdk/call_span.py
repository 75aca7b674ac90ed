"""The span of an instrumented LLM call: tokentrace's own recording span where it is exactly
equivalent to the OTel SDK's, the SDK's everywhere else.

Why: on the calling thread the OTel SDK span costs ~170 µs per call cache-cold (sampler,
processors' `on_start`, `BoundedAttributes`, validation of every value, locks; measured in
bench/span_cost.py), most of what instrumentation added to an LLM call. A `CallSpan` is a
plain object: ids, times, a dict of attributes, the tags stamped from baggage as
`TagSpanProcessor` would, queued as it ends. It is an OTel API `Span` (current during the call,
the parent of any span started inside it) and reads as a `ReadableSpan`: the direct OTLP
encoder writes it as it is, and any other exporter gets a real `ReadableSpan`, made in the
export thread (`readable_spans`).

Equivalent means: the provider is the one `init()` made (`Recorder`), its sampler is the
default (parent-based, always on) and the parent is sampled, its span limits are the defaults,
and its span processors are still only tokentrace's tag and batching processors. Should any of
that not hold (an app that added a processor of its own, say), the call gets an OTel SDK span
as before. tests/sdk/test_call_span.py holds the two to the same result.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import opentelemetry.sdk.trace as sdk_trace
from opentelemetry import context, trace
from opentelemetry.attributes import BoundedAttributes, _clean_attribute_value
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider, sampling
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from tokentrace.sdk.tags import TagSpanProcessor, tag_attributes

log = logging.getLogger("tokentrace")
SCOPE = "tokentrace.sdk"
_tracer = trace.get_tracer(SCOPE)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSET = Status(StatusCode.UNSET)
# Values kept as they are (exactly these types: most values are); the rest are cleaned as the SDK does.
_SCALARS = frozenset((str, bool, int, float))
_MAX = SpanLimits().max_span_attributes  # 128, as for events and links; configure() checks the limits


@dataclass(frozen=True, slots=True)
class Recorder:
    """Where `CallSpan`s come from and go: the provider `init()` made and its batching processor."""

    provider: TracerProvider
    batcher: Any  # BatchingSpanProcessor (not imported: batching imports this module)
    scope: InstrumentationScope
    active: Any  # the provider's multi span processor
    processors: tuple  # its processors when they were only tokentrace's tag and batching ones


_recorder: Recorder | None = None


def configure(provider: TracerProvider, tags: TagSpanProcessor, batcher: Any) -> None:
    """Record calls with `CallSpan`s on `provider` (one `init()` made) where they are
    equivalent; a provider with another sampler, other span limits or other processors
    keeps OTel's spans."""
    global _recorder
    _recorder = None
    limits = getattr(provider, "_span_limits", None)
    counts = ("max_span_attributes", "max_events", "max_links", "max_event_attributes", "max_link_attributes")
    active = getattr(provider, "_active_span_processor", None)
    processors = getattr(active, "_span_processors", None)
    if (
        provider.sampler is not sampling.DEFAULT_ON
        or getattr(provider, "_disabled", True)
        or not isinstance(limits, SpanLimits)
        or any(getattr(limits, name) != _MAX for name in counts)
        or limits.max_attribute_length is not None
        or limits.max_span_attribute_length is not None
        # a tuple, replaced when a processor is added (start() relies on it)
        or type(processors) is not tuple
        or processors != (tags, batcher)
    ):
        return
    scope = getattr(provider.get_tracer(SCOPE), "_instrumentation_scope", None)  # the SDK tracer's own
    _recorder = Recorder(provider, batcher, scope or InstrumentationScope(SCOPE, ""), active, processors)


def unconfigure() -> None:
    """Back to OTel SDK spans (the provider was shut down)."""
    global _recorder
    _recorder = None


def start(name: str, attributes: dict[str, Any], ctx: context.Context | None = None) -> trace.Span:
    """Start an LLM call's CLIENT span under `ctx` (the current context when None).
    `attributes` becomes the span's own as it is (the caller gives it up): a few plain str,
    bool, int or float values."""
    recorder = _recorder
    if ctx is None:
        ctx = context.get_current()
    # The provider still runs only tokentrace's processors (an app may add its own later):
    # adding one replaces the SDK's tuple of processors, so identity tells.
    if recorder is not None and recorder.active._span_processors is recorder.processors:
        parent = trace.get_current_span(ctx).get_span_context()
        if not parent.is_valid:
            ids = recorder.provider.id_generator
            return CallSpan(name, ids.generate_trace_id(), None, attributes, ctx, recorder)
        if parent.trace_flags.sampled:
            return CallSpan(name, parent.trace_id, parent, attributes, ctx, recorder)
    return _tracer.start_span(name, context=ctx, kind=SpanKind.CLIENT, attributes=attributes)


class CallSpan(trace.Span):
    """A recording CLIENT span: an OTel API span while it runs, a `ReadableSpan` look-alike
    once it has ended. Its times come from the SDK spans' clock (`opentelemetry.sdk.trace.time_ns`,
    which the simulator shifts to compress time). Attributes, events and links keep the SDK
    span's rules (values cleaned as `BoundedAttributes` cleans them, at most 128 of each, a
    status set as `Span.set_status` sets it); only plain values with room left skip the checks."""

    __slots__ = (
        "_context",
        "_recorder",
        "_span_id",
        "_trace_id",
        "attributes",
        "dropped_attributes",
        "end_time",
        "events",
        "links",
        "name",
        "parent",
        "start_time",
        "status",
    )
    kind = SpanKind.CLIENT
    dropped_events = dropped_links = 0

    def __init__(
        self,
        name: str,
        trace_id: int,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        ctx: context.Context,
        recorder: Recorder,
    ) -> None:
        self.name = name
        self.parent = parent
        self._trace_id = trace_id
        self._span_id = recorder.provider.id_generator.generate_span_id()
        self._context: SpanContext | None = None  # made when first asked for: rarely on the app's thread
        self._recorder = recorder
        self.end_time: int | None = None
        self.dropped_attributes = 0
        # Taken as it is (start()'s contract: plain values, fewer than the limit): checking
        # them again cost ~5 µs a call, measured.
        self.attributes = attributes
        tags = tag_attributes(ctx)  # as TagSpanProcessor.on_start does
        if tags:
            attributes.update(tags)
        self.events: list[Event] | tuple = ()  # lists once something is added
        self.links: list[trace.Link] | tuple = ()
        self.status = _UNSET
        self.start_time = sdk_trace.time_ns()

    # --- the OTel API span ----------------------------------------------------------------
    @property
    def context(self) -> SpanContext:
        if self._context is None:
            trace_state = self.parent.trace_state if self.parent is not None else None
            self._context = SpanContext(self._trace_id, self._span_id, False, _SAMPLED, trace_state)
        return self._context

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self.end_time is None:
            if type(value) in _SCALARS and type(key) is str and key and len(self.attributes) < _MAX:
                self.attributes[key] = value
            else:
                self._set_checked(key, value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def _set_checked(self, key: Any, value: Any) -> None:
        """What `BoundedAttributes` does with any key and value: drop a bad key, clean the value,
        make room by dropping the oldest."""
        if not key or not isinstance(key, str):
            log.warning("invalid key `%s`. must be non-empty string. Dropping key from attributes.", key)
            self.dropped_attributes += 1
            return
        own = self.attributes
        own.pop(key, None)
        if len(own) >= _MAX:
            del own[next(iter(own))]
            self.dropped_attributes += 1
        own[key] = _clean_attribute_value(value, None)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self.end_time is None and len(self.events) < _MAX:
            cleaned = BoundedAttributes(_MAX, attributes, immutable=True)
            self.events = [*self.events, Event(name, cleaned, timestamp)]

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        # As the SDK: an invalid context is kept when it carries attributes or a trace state.
        valid = bool(context and (context.is_valid or attributes or context.trace_state))
        if self.end_time is None and valid and len(self.links) < _MAX:
            self.links = [
                *self.links,
                trace.Link(context, BoundedAttributes(_MAX, attributes, immutable=True)),
            ]

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As the SDK: OK is final, UNSET changes nothing, a Status object brings its own description.
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        new = status if isinstance(status, Status) else Status(status, description)
        if new.status_code is not StatusCode.UNSET:
            self.status = new

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        event = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        self.add_event("exception", {**event, **(attributes or {})}, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            return
        self.end_time = end_time or sdk_trace.time_ns()
        self._recorder.batcher.add(self)

    # --- the ReadableSpan look-alike (what the encoders read) ------------------------------
    @property
    def resource(self) -> Any:
        return self._recorder.provider.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope:
        return self._recorder.scope

    def _bounded_attributes(self) -> BoundedAttributes:
        attributes = BoundedAttributes(_MAX, self.attributes, immutable=True)
        attributes.dropped = self.dropped_attributes
        return attributes

    def readable(self) -> ReadableSpan:
        """The same span as an OTel SDK `ReadableSpan`, for exporters other than tokentrace's."""
        return ReadableSpan(
            self.name,
            self.context,
            self.parent,
            self.resource,
            self._bounded_attributes(),
            tuple(self.events),
            tuple(self.links),
            self.kind,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=self._recorder.scope,
        )


def put(span: trace.Span, attributes: dict[str, Any]) -> None:
    """Attributes tokentrace built itself (str, bool, int or float values, tuples of them): into a
    running `CallSpan`'s dict without the API's checks (~2 µs a call cache-cold, measured),
    through `set_attributes` into any other span."""
    if type(span) is CallSpan and span.end_time is None and len(span.attributes) + len(attributes) < _MAX:
        span.attributes.update(attributes)
    else:
        span.set_attributes(attributes)


def readable_spans(spans: Iterable[Any]) -> Sequence[Any]:
    """Spans as exporters other than tokentrace's take them: each `CallSpan` as a `ReadableSpan`."""
    return [span.readable() if isinstance(span, CallSpan) else span for span in spans]
