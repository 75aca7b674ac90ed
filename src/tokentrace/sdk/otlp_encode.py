"""ReadableSpans → OTLP ExportTraceServiceRequest bytes, written directly.

The OTel exporter builds a protobuf message object per span, attribute and value, then
serializes them: in the SDK's export thread that is most of tokentrace's CPU per LLM call, and
it holds the GIL while the app waits. This writes the same wire format straight into one
buffer, caching the encoded bytes of keys and of repeated (key, value) attributes (provider,
model, operation and tags repeat on every span). Checked field by field against the official
encoder in tests/sdk/test_otlp_encode.py.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

_FIXED64 = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_FIXED32 = struct.Struct("<I")
_CACHE_LIMIT = 4096
# Tuples of types, not `tuple | list` (a union is built on every call) nor the ABCs (see _any_value).
_SEQUENCES = (tuple, list)
_MAPPINGS = (dict, MappingProxyType)
# Span.flags: "has is_remote" set, and is_remote for a remote parent (as the official encoder).
_LOCAL_FLAGS = b"\x85\x01" + struct.pack("<I", 0x100)
_REMOTE_FLAGS = b"\x85\x01" + struct.pack("<I", 0x300)
_LOCAL_LINK = b"\x35" + struct.pack("<I", 0x100)  # Link.flags, field 6
_REMOTE_LINK = b"\x35" + struct.pack("<I", 0x300)


def _slow_varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL = [_slow_varint(n) for n in range(1 << 14)]


def _varint(n: int) -> bytes:
    return _SMALL[n] if n < 16384 else _slow_varint(n)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(7, value)
    # Concrete types, not the Sequence ABC: an app that registers ABCs resets their caches, and
    # each check then walks every subclass (measured: 4 ms a span under a busy app thread).
    if isinstance(value, _SEQUENCES):
        return _field(5, b"".join(_field(1, _any_value(v)) for v in value))
    if value is None:  # the SDK keeps None (and what it could not clean) as an empty value
        return b""
    if isinstance(value, _MAPPINGS):
        pairs = (_field(1, str(k).encode()) + _field(2, _any_value(v)) for k, v in value.items())
        return _field(6, b"".join(_field(1, pair) for pair in pairs))
    return _field(1, str(value).encode())


# (field number, key, type, value): 1 and True are equal dict keys, but not equal attributes.
_KV_CACHE: dict[tuple[int, str, type, Any], bytes] = {}


def _key_value(number: int, key: str, value: Any) -> bytes:
    """Field `number` holding KeyValue{key, value}; short scalars are cached (they recur on
    every span: provider, model, operation, tags)."""
    kind = type(value)
    cacheable = kind is bool or kind is int or (kind is str and len(value) <= 128)
    if cacheable:
        cached = _KV_CACHE.get((number, key, kind, value))
        if cached is not None:
            return cached
    encoded = _field(number, _field(1, key.encode()) + _field(2, _any_value(value)))
    if cacheable:
        if len(_KV_CACHE) >= _CACHE_LIMIT:
            _KV_CACHE.clear()
        _KV_CACHE[(number, key, kind, value)] = encoded
    return encoded


def _attributes(number: int, attributes: Any) -> bytes:
    if not attributes:
        return b""
    return b"".join([_key_value(number, k, v) for k, v in attributes.items()])


def span_message(
    *,
    trace_id: int,
    span_id: int,
    trace_state: str,
    parent_span_id: int | None,
    remote_parent: bool,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attributes: Any,
    dropped_attributes: int = 0,
    events: Sequence[tuple[int, str, Any]] = (),
    links: Sequence[tuple[int, int, bool, Any]] = (),
    status_code: int = 0,
    status_description: str | None = None,
) -> bytes:
    """An OTLP Span message from plain values: `kind` and `status_code` as OTLP numbers, events as
    (time, name, attributes), links as (trace id, span id, remote, attributes)."""
    parts = [b"\x0a\x10" + trace_id.to_bytes(16, "big"), b"\x12\x08" + span_id.to_bytes(8, "big")]
    if trace_state:
        parts.append(_field(3, trace_state.encode()))
    if parent_span_id is not None:
        parts.append(b"\x22\x08" + parent_span_id.to_bytes(8, "big"))
    parts.append(_field(5, name.encode()))
    parts.append(b"\x30" + _varint(kind))
    parts.append(b"\x39" + _FIXED64.pack(start_ns))
    parts.append(b"\x41" + _FIXED64.pack(end_ns))
    parts.append(_attributes(9, attributes))
    if dropped_attributes:
        parts.append(b"\x50" + _varint(dropped_attributes))
    for timestamp, event_name, event_attributes in events:
        body = b"\x09" + _FIXED64.pack(timestamp) + _field(2, event_name.encode())
        parts.append(_field(11, body + _attributes(3, event_attributes)))
    for link_trace_id, link_span_id, link_remote, link_attributes in links:
        body = b"\x0a\x10" + link_trace_id.to_bytes(16, "big") + b"\x12\x08" + link_span_id.to_bytes(8, "big")
        flags = _REMOTE_LINK if link_remote else _LOCAL_LINK
        parts.append(_field(13, body + _attributes(4, link_attributes) + flags))
    body = b""
    if status_description:
        body += _field(2, status_description.encode())
    if status_code:
        body += b"\x18" + _varint(status_code)
    parts.append(_field(15, body))
    parts.append(_REMOTE_FLAGS if remote_parent else _LOCAL_FLAGS)
    return b"".join(parts)


def _span(span: ReadableSpan) -> bytes:
    context = span.context
    parent = span.parent
    status = span.status
    return span_message(
        trace_id=context.trace_id,
        span_id=context.span_id,
        trace_state=context.trace_state.to_header() if context.trace_state else "",
        parent_span_id=parent.span_id if parent is not None else None,
        remote_parent=parent is not None and parent.is_remote,
        name=span.name,
        kind=span.kind.value + 1,  # SDK INTERNAL=0 is OTLP's 1
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        attributes=span.attributes,
        dropped_attributes=span.dropped_attributes,
        events=[(event.timestamp, event.name, event.attributes) for event in span.events],
        links=[
            (link.context.trace_id, link.context.span_id, link.context.is_remote, link.attributes)
            for link in span.links
        ],
        status_code=status.status_code.value if status is not None else 0,
        status_description=status.description if status is not None else None,
    )


@dataclass(frozen=True, slots=True)
class EncodedSpan:
    """One span already written as OTLP bytes, with what groups it in a request."""

    resource: Any
    scope: tuple[str, str | None]
    data: bytes  # the ScopeSpans.spans field: tag, length, Span message

    @classmethod
    def of(cls, resource: Any, scope: tuple[str, str | None], message: bytes) -> EncodedSpan:
        """A Span message (`span_message`) made ready for `request_body`."""
        return cls(resource, scope, _field(2, message))


def encode_span(span: ReadableSpan) -> EncodedSpan:
    scope = span.instrumentation_scope
    key = (scope.name, scope.version) if scope is not None else ("", None)
    return EncodedSpan(span.resource, key, _field(2, _span(span)))


def request_body(encoded: Sequence[EncodedSpan]) -> bytes:
    """An ExportTraceServiceRequest holding the encoded spans, grouped by resource and scope."""
    grouped: dict[int, tuple[Any, dict[tuple[str, str | None], list[bytes]]]] = {}
    for item in encoded:
        _, scopes = grouped.setdefault(id(item.resource), (item.resource, {}))
        scopes.setdefault(item.scope, []).append(item.data)
    out = []
    for resource, scopes in grouped.values():
        body = [_field(1, _attributes(1, resource.attributes))]
        for (name, version), spans in scopes.items():
            scope = _field(1, name.encode()) + (_field(2, version.encode()) if version else b"")
            body.append(_field(2, _field(1, scope) + b"".join(spans)))
        if resource.schema_url:
            body.append(_field(3, resource.schema_url.encode()))
        out.append(_field(1, b"".join(body)))
    return b"".join(out)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest holding `spans`, grouped by resource and scope."""
    return request_body([encode_span(span) for span in spans])
