"""OTLP/HTTP receiver: POST /v1/traces and /v1/logs (protobuf or JSON, gzip or deflate).

The answer comes only after what was accepted is fsynced to the spool. Rejected spans or
log records are reported through partial_success; the rest of their batch is kept.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokentrace.ingest.pipeline import Overloaded
from tokentrace.ingest.prepare import JSON, PROTOBUF, Prepared
from tokentrace.ingest.raw import DecodeError
from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.body import BodyTooLarge, declared_length, read_body
from tokentrace.server.state import ServerState

_PROTOBUF_TYPES = {PROTOBUF, "application/protobuf"}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _status_protobuf(code: int, message: str) -> bytes:
    """google.rpc.Status{code, message}, encoded by hand (two scalar fields)."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _failure(status: int, message: str, is_protobuf: bool, headers: dict | None = None) -> Response:
    # google.rpc.Code for the HTTP status, as OTLP/HTTP asks for the body.
    code = {400: 3, 401: 16, 413: 3, 415: 3, 429: 8, 503: 14}.get(status, 2)
    if is_protobuf:
        body, media = _status_protobuf(code, message), PROTOBUF
    else:
        body, media = orjson.dumps({"code": code, "message": message}), JSON
    return Response(body, status_code=status, media_type=media, headers=headers)


def _export_response(message: type, partial: type, rejected_field: str) -> Callable[[Prepared], object]:
    """The OTLP export response of a signal: empty, or its partial success when spans were rejected."""

    def build(prepared: Prepared) -> object:
        response = message()
        if prepared.rejected:
            rejected = {rejected_field: prepared.rejected, "error_message": prepared.error_message()}
            response.partial_success.CopyFrom(partial(**rejected))
        return response

    return build


traces_response = _export_response(ExportTraceServiceResponse, ExportTracePartialSuccess, "rejected_spans")
logs_response = _export_response(ExportLogsServiceResponse, ExportLogsPartialSuccess, "rejected_log_records")


@dataclass(frozen=True)
class Signal:
    """What differs between the OTLP signals tokentrace receives."""

    name: str  # prepare.SIGNALS
    response: Callable[[Prepared], object]
    rejected_key: str  # the partialSuccess count field in the JSON mapping


TRACES = Signal("traces", traces_response, "rejectedSpans")
LOGS = Signal("logs", logs_response, "rejectedLogRecords")


def _success(signal: Signal, prepared: Prepared, is_protobuf: bool) -> Response:
    if is_protobuf:
        return Response(signal.response(prepared).SerializeToString(), media_type=PROTOBUF)
    body = {}
    if prepared.rejected:
        body["partialSuccess"] = {
            signal.rejected_key: str(prepared.rejected),
            "errorMessage": prepared.error_message(),
        }
    return Response(orjson.dumps(body), media_type=JSON)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise DecodeError(f"unsupported Content-Encoding {encoding!r}: use gzip, deflate or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, limit + 1)  # bounded: a gzip bomb stops here
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {encoding}: {exc}") from exc
    if len(out) > limit:
        raise BodyTooLarge
    return out


def _too_many(state: ServerState, is_protobuf: bool) -> Response:
    state.refused["429"] += 1
    message = f"{state.admission.held_bytes} bytes of requests are in flight; retry later"
    return _failure(429, message, is_protobuf, {"Retry-After": "1"})


async def _export(request: Request, signal: Signal) -> Response:
    state: ServerState = request.app.state.tt
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_protobuf = media in _PROTOBUF_TYPES
    if not is_protobuf and media != JSON:
        return _failure(
            415, f"unsupported Content-Type {media or '(none)'!r}: use {PROTOBUF} or {JSON}", False
        )
    try:
        project = project_for(state, request.headers.get("authorization"))
    except Unauthorized as exc:
        return _failure(401, str(exc), is_protobuf)
    limit = state.config.max_body_bytes
    held = min(declared_length(request), limit)
    if not state.admission.admit(held):
        return _too_many(state, is_protobuf)
    try:
        body = _decompress(
            await read_body(request, limit), request.headers.get("content-encoding", ""), limit
        )
        # Larger than declared (chunked, or decompressed), it may no longer fit: refused before
        # it is decoded.
        if len(body) > held:
            if not state.admission.admit(len(body) - held, own=held):
                return _too_many(state, is_protobuf)
            held = len(body)
        media = PROTOBUF if is_protobuf else JSON
        prepared = await asyncio.wrap_future(state.pipeline.export(project, body, media, signal.name))
    except BodyTooLarge:
        return _failure(413, f"body larger than the limit of {limit} bytes", is_protobuf)
    except DecodeError as exc:
        return _failure(400, str(exc), is_protobuf)
    except Overloaded as exc:
        state.refused["503"] += 1
        headers = {"Retry-After": str(exc.retry_after_s)}
        return _failure(503, str(exc), is_protobuf, headers)
    except OSError as exc:  # the spool could not write: nothing is acked
        state.refused["503"] += 1
        return _failure(503, f"cannot store data right now: {exc}", is_protobuf, {"Retry-After": "5"})
    finally:
        state.admission.release(held)
    return _success(signal, prepared, is_protobuf)


async def export_traces(request: Request) -> Response:
    return await _export(request, TRACES)


async def export_logs(request: Request) -> Response:
    return await _export(request, LOGS)


routes = [
    Route("/v1/traces", export_traces, methods=["POST"]),
    # Langfuse's exporter posts here (gzip, Basic auth).
    Route("/api/public/otel/v1/traces", export_traces, methods=["POST"]),
    Route("/v1/logs", export_logs, methods=["POST"]),
]
