"""Decode OTLP/JSON (the protobuf JSON mapping) into RawSpans and RawLogRecords.

Per the OTLP spec, trace and span ids are hex strings (not base64), enums are integers,
and 64-bit integers may be strings. Keys are lowerCamelCase; snake_case is accepted too,
as protobuf JSON parsers do. A structural error in one span rejects that span alone.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from tokentrace.ingest.raw import DecodeError, RawEvent, RawLogRecord, RawSpan, SpanRejected

_VALUE_KEYS = (
    ("stringValue", "string_value"),
    ("intValue", "int_value"),
    ("doubleValue", "double_value"),
    ("boolValue", "bool_value"),
    ("arrayValue", "array_value"),
    ("kvlistValue", "kvlist_value"),
    ("bytesValue", "bytes_value"),
)


def _get(obj: dict, camel: str, snake: str, default: Any = None) -> Any:
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake, default)
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise SpanRejected(f"{what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise SpanRejected(f"{what} must be an integer, got {value!r}")


def any_value(value: Any, depth: int = 0) -> Any:
    """An OTLP/JSON AnyValue object as a plain Python value."""
    if depth > 64:
        raise SpanRejected("attribute value nested deeper than 64 levels")
    if not isinstance(value, dict):
        raise SpanRejected(f"attribute value must be an AnyValue object, got {type(value).__name__}")
    for camel, snake in _VALUE_KEYS:
        if camel in value or snake in value:
            raw = _get(value, camel, snake)
            break
    else:
        return None
    if camel == "stringValue":
        if not isinstance(raw, str):
            raise SpanRejected("stringValue must be a string")
        return raw
    if camel == "intValue":
        return _int(raw, "intValue")
    if camel == "doubleValue":
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise SpanRejected("doubleValue must be a number")
        try:
            return float(raw)  # "NaN", "Infinity" are valid in the JSON mapping
        except ValueError as exc:
            raise SpanRejected(f"doubleValue {raw!r} is not a number") from exc
    if camel == "boolValue":
        if not isinstance(raw, bool):
            raise SpanRejected("boolValue must be true or false")
        return raw
    if camel == "arrayValue":
        values = raw.get("values", []) if isinstance(raw, dict) else None
        if not isinstance(values, list):
            raise SpanRejected("arrayValue.values must be a list")
        return [any_value(v, depth + 1) for v in values]
    if camel == "kvlistValue":
        values = raw.get("values", []) if isinstance(raw, dict) else None
        if not isinstance(values, list):
            raise SpanRejected("kvlistValue.values must be a list")
        return key_values(values, depth + 1)
    try:
        return base64.b64decode(raw, validate=True).hex()
    except (binascii.Error, TypeError, ValueError) as exc:  # ValueError: not ASCII
        raise SpanRejected("bytesValue must be base64") from exc


def key_values(pairs: Any, depth: int = 0) -> dict[str, Any]:
    """A JSON list of {key, value} as a dict."""
    if not isinstance(pairs, list):
        raise SpanRejected("attributes must be a list of {key, value}")
    out: dict[str, Any] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise SpanRejected("each attribute must be an object with a string key")
        out[pair["key"]] = any_value(pair.get("value", {}), depth)
    return out


def _span(obj: Any, resource: dict[str, Any], scope_name: str, scope_version: str) -> RawSpan:
    if not isinstance(obj, dict):
        raise SpanRejected("span must be an object")
    status = obj.get("status") or {}
    if not isinstance(status, dict):
        raise SpanRejected("status must be an object")
    raw_events = obj.get("events") or []
    if not isinstance(raw_events, list):
        raise SpanRejected("events must be a list")
    events = []
    for event in raw_events:
        if not isinstance(event, dict):
            raise SpanRejected("event must be an object")
        events.append(
            RawEvent(
                str(event.get("name", "")),
                _int(_get(event, "timeUnixNano", "time_unix_nano", 0), "event timeUnixNano"),
                key_values(event.get("attributes") or []),
            )
        )
    ids = []
    for camel, snake in (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id")):
        value = _get(obj, camel, snake, "")
        if not isinstance(value, str):
            raise SpanRejected(f"{camel} must be a hex string")
        ids.append(value.lower())
    name = obj.get("name", "")
    if not isinstance(name, str):
        raise SpanRejected("name must be a string")
    message = status.get("message", "")
    return RawSpan(
        trace_id=ids[0],
        span_id=ids[1],
        parent_span_id=ids[2],
        name=name,
        kind=_int(obj.get("kind", 0), "kind"),
        start_unix_nano=_int(_get(obj, "startTimeUnixNano", "start_time_unix_nano", 0), "startTimeUnixNano"),
        end_unix_nano=_int(_get(obj, "endTimeUnixNano", "end_time_unix_nano", 0), "endTimeUnixNano"),
        status_code=_int(status.get("code", 0), "status.code"),
        status_message=message if isinstance(message, str) else str(message),
        attributes=key_values(obj.get("attributes") or []),
        resource=resource,
        scope_name=scope_name,
        scope_version=scope_version,
        events=events,
    )


def _document(body: bytes, top: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DecodeError(f"body must be a JSON object with {top}")
    return doc


def _count(scopes: list, key: str) -> int:
    """How many items the scopes hold under `key` (what a bad resource rejects)."""
    return sum(
        len(items)
        for scope in scopes
        if isinstance(scope, dict) and isinstance(items := scope.get(key), list)
    )


def decode_traces(body: bytes) -> tuple[list[RawSpan], list[str]]:
    """Decode an OTLP/JSON export: (spans, one error message per rejected span)."""
    doc = _document(body, "resourceSpans")
    resource_spans = _get(doc, "resourceSpans", "resource_spans", [])
    if not isinstance(resource_spans, list):
        raise DecodeError("resourceSpans must be a list")
    spans: list[RawSpan] = []
    errors: list[str] = []
    for rs in resource_spans:
        if not isinstance(rs, dict):
            raise DecodeError("each resourceSpans entry must be an object")
        scope_spans = _get(rs, "scopeSpans", "scope_spans", [])
        if not isinstance(scope_spans, list):
            raise DecodeError("scopeSpans must be a list")
        try:
            resource = key_values((rs.get("resource") or {}).get("attributes") or [])
        except (SpanRejected, AttributeError) as exc:
            # A bad resource spoils every span under it, and only those.
            errors.extend([f"resource: {exc}"] * _count(scope_spans, "spans"))
            continue
        for ss in scope_spans:
            if not isinstance(ss, dict):
                raise DecodeError("each scopeSpans entry must be an object")
            scope = ss.get("scope") or {}
            scope_name = scope.get("name", "") if isinstance(scope, dict) else ""
            scope_version = scope.get("version", "") if isinstance(scope, dict) else ""
            span_list = ss.get("spans") or []
            if not isinstance(span_list, list):
                raise DecodeError("spans must be a list")
            for obj in span_list:
                try:
                    spans.append(_span(obj, resource, str(scope_name), str(scope_version)))
                except SpanRejected as exc:
                    errors.append(str(exc))
    return spans, errors


def _log_record(obj: Any, resource: dict[str, Any], scope_name: str) -> RawLogRecord:
    if not isinstance(obj, dict):
        raise SpanRejected("log record must be an object")
    ids = []
    for camel, snake in (("traceId", "trace_id"), ("spanId", "span_id")):
        value = _get(obj, camel, snake, "")
        if not isinstance(value, str):
            raise SpanRejected(f"{camel} must be a hex string")
        ids.append(value.lower())
    event_name = _get(obj, "eventName", "event_name", "")
    body = obj.get("body")
    return RawLogRecord(
        trace_id=ids[0],
        span_id=ids[1],
        time_unix_nano=_int(_get(obj, "timeUnixNano", "time_unix_nano", 0), "timeUnixNano"),
        observed_time_unix_nano=_int(
            _get(obj, "observedTimeUnixNano", "observed_time_unix_nano", 0), "observedTimeUnixNano"
        ),
        event_name=event_name if isinstance(event_name, str) else "",
        body=any_value(body) if body is not None else None,
        attributes=key_values(obj.get("attributes") or []),
        resource=resource,
        scope_name=scope_name,
    )


def decode_logs(body: bytes) -> tuple[list[RawLogRecord], list[str]]:
    """Decode an OTLP/JSON logs export: (records, one error message per rejected record)."""
    doc = _document(body, "resourceLogs")
    resource_logs = _get(doc, "resourceLogs", "resource_logs", [])
    if not isinstance(resource_logs, list):
        raise DecodeError("resourceLogs must be a list")
    records: list[RawLogRecord] = []
    errors: list[str] = []
    for rl in resource_logs:
        if not isinstance(rl, dict):
            raise DecodeError("each resourceLogs entry must be an object")
        scope_logs = _get(rl, "scopeLogs", "scope_logs", [])
        if not isinstance(scope_logs, list):
            raise DecodeError("scopeLogs must be a list")
        try:
            resource = key_values((rl.get("resource") or {}).get("attributes") or [])
        except (SpanRejected, AttributeError) as exc:
            errors.extend([f"resource: {exc}"] * _count(scope_logs, "logRecords"))
            continue
        for sl in scope_logs:
            if not isinstance(sl, dict):
                raise DecodeError("each scopeLogs entry must be an object")
            scope = sl.get("scope") or {}
            scope_name = str(scope.get("name", "")) if isinstance(scope, dict) else ""
            items = _get(sl, "logRecords", "log_records", [])
            if not isinstance(items, list):
                raise DecodeError("logRecords must be a list")
            for obj in items:
                try:
                    records.append(_log_record(obj, resource, scope_name))
                except SpanRejected as exc:
                    errors.append(str(exc))
    return records, errors
