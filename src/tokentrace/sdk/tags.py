"""`tokentrace.context(...)`: attribution tags in OTel baggage, stamped on every span started inside."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import baggage
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.context import Context, attach, detach, get_current
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from tokentrace.semconv import TAG_ATTRIBUTES

#: context() keyword → the attribute (and baggage key) the server reads.
TAG_KEYS = TAG_ATTRIBUTES
#: The baggage keys stamped on spans as attributes.
STAMPED = frozenset(TAG_KEYS.values())


@contextmanager
def context(**tags: str | int | None) -> Iterator[None]:
    """Tag every span started inside (threads and asyncio tasks included); inner contexts
    override per key, and a None value leaves the outer one in place."""
    unknown = set(tags) - set(TAG_KEYS)
    if unknown:
        raise TypeError(f"unknown tags {sorted(unknown)}; use {sorted(TAG_KEYS)}")
    ctx = get_current()
    for name, value in tags.items():
        if value is not None:
            ctx = baggage.set_baggage(TAG_KEYS[name], str(value), ctx)
    token = attach(ctx)
    try:
        yield
    finally:
        detach(token)


def tag_attributes(ctx: Context | None = None) -> dict[str, str]:
    """tokentrace's tags in the context's baggage, as span attributes."""
    # The baggage entry read as `baggage.get_all` reads it, without its copy: this runs as
    # every span starts, and most contexts carry no baggage at all.
    entries = (get_current() if ctx is None else ctx).get(_BAGGAGE_KEY)
    if not entries or not isinstance(entries, dict):
        return {}
    return {key: str(value) for key, value in entries.items() if key in STAMPED}


class TagSpanProcessor(SpanProcessor):
    """Copies tokentrace's tags from baggage onto each span when it starts."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        span.set_attributes(tag_attributes(parent_context))

    def on_end(self, span: ReadableSpan) -> None:
        pass
