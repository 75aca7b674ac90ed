"""Build OTLP export payloads (protobuf and JSON) for tests."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def _any(value: Any) -> common_pb2.AnyValue:
    v = common_pb2.AnyValue()
    if isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int):
        v.int_value = value
    elif isinstance(value, float):
        v.double_value = value
    elif isinstance(value, str):
        v.string_value = value
    elif isinstance(value, list | tuple):
        v.array_value.values.extend(_any(x) for x in value)
    else:
        raise TypeError(type(value))
    return v


def span(
    trace_id: str,
    span_id: str | None = None,
    parent: str = "",
    name: str = "span",
    start_ns: int | None = None,
    duration_ms: float = 10.0,
    attributes: dict[str, Any] | None = None,
    status_code: int = 0,
    status_message: str = "",
    kind: int = 1,
    events: list[tuple[str, dict[str, Any]]] = (),
) -> dict[str, Any]:
    """A span description usable by both `protobuf()` and `json_body()`."""
    start = start_ns or time.time_ns()
    return {
        "trace_id": trace_id,
        "span_id": span_id or new_span_id(),
        "parent": parent,
        "name": name,
        "start": start,
        "end": start + int(duration_ms * 1e6),
        "attributes": attributes or {},
        "status_code": status_code,
        "status_message": status_message,
        "kind": kind,
        "events": list(events),
    }


def chat(trace_id: str, parent: str = "", model: str = "gpt-4o", provider: str = "openai", **usage: Any):
    """An LLM chat span with gen_ai.* attributes; usage keys are attribute suffixes."""
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
    }
    for key, value in usage.items():
        attrs[f"gen_ai.usage.{key}"] = value
    return span(trace_id, parent=parent, name=f"chat {model}", kind=3, attributes=attrs)


def protobuf(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in (resource or {"service.name": "test-svc"}).items():
        rs.resource.attributes.add(key=k, value=_any(v))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for s in spans:
        p = ss.spans.add(
            trace_id=bytes.fromhex(s["trace_id"]),
            span_id=bytes.fromhex(s["span_id"]),
            parent_span_id=bytes.fromhex(s["parent"]),
            name=s["name"],
            kind=s["kind"],
            start_time_unix_nano=s["start"],
            end_time_unix_nano=s["end"],
        )
        p.status.code = s["status_code"]
        p.status.message = s["status_message"]
        for k, v in s["attributes"].items():
            p.attributes.add(key=k, value=_any(v))
        for name, attrs in s["events"]:
            e = p.events.add(name=name, time_unix_nano=s["start"])
            for k, v in attrs.items():
                e.attributes.add(key=k, value=_any(v))
    return req.SerializeToString()


def _json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_json_value(x) for x in value]}}
    return {"stringValue": value}


def json_body(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": k, "value": _json_value(v)}
                        for k, v in (resource or {"service.name": "test-svc"}).items()
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "tests"},
                        "spans": [
                            {
                                "traceId": s["trace_id"],
                                "spanId": s["span_id"],
                                "parentSpanId": s["parent"],
                                "name": s["name"],
                                "kind": s["kind"],
                                "startTimeUnixNano": str(s["start"]),
                                "endTimeUnixNano": str(s["end"]),
                                "attributes": [
                                    {"key": k, "value": _json_value(v)} for k, v in s["attributes"].items()
                                ],
                                "status": {"code": s["status_code"], "message": s["status_message"]},
                            }
                            for s in spans
                        ],
                    }
                ],
            }
        ]
    }
