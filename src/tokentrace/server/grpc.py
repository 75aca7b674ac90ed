"""OTLP/gRPC receiver: the TraceService and LogsService on their own port, sharing the HTTP
server's pipeline."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.rpc.error_details_pb2 import RetryInfo

from tokentrace.ingest.pipeline import Overloaded
from tokentrace.ingest.prepare import PROTOBUF, Prepared
from tokentrace.ingest.raw import DecodeError
from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.otlp import logs_response, traces_response
from tokentrace.server.state import ServerState

_WORKERS = 4


def _unavailable(state: ServerState, context, message: str, retry_after_s: int) -> None:
    """UNAVAILABLE with OTLP's RetryInfo: the exporters wait that long before trying again."""
    state.refused["UNAVAILABLE"] += 1
    info = RetryInfo()
    info.retry_delay.seconds = retry_after_s
    context.set_trailing_metadata((("google.rpc.retryinfo-bin", info.SerializeToString()),))
    context.abort(grpc.StatusCode.UNAVAILABLE, message)


def _export(state: ServerState, context, body: bytes, signal: str) -> Prepared:
    """An Export RPC's request, still serialized (the pipeline decodes it, as over HTTP)."""
    metadata = dict(context.invocation_metadata())
    try:
        project = project_for(state, metadata.get("authorization"))
    except Unauthorized as exc:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    try:
        prepared = state.pipeline.export(project, body, PROTOBUF, signal).result(timeout=60)
    except Overloaded as exc:
        _unavailable(state, context, str(exc), exc.retry_after_s)
    except DecodeError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except OSError as exc:
        _unavailable(state, context, f"cannot store data right now: {exc}", 5)
    return prepared


def _service(name: str, signal: str, response: Callable[[Prepared], Any], state: ServerState):
    """An OTLP collector service whose Export takes the request's bytes as they came."""

    def export(body: bytes, context) -> Any:
        return response(_export(state, context, body, signal))

    handler = grpc.unary_unary_rpc_method_handler(
        export, request_deserializer=None, response_serializer=lambda message: message.SerializeToString()
    )
    return grpc.method_handlers_generic_handler(name, {"Export": handler})


def start_grpc(state: ServerState, host: str, port: int) -> grpc.Server:
    """Start the gRPC receiver; returns the running server (call .stop()). Its memory for
    requests is bounded by the RPCs it holds at once (16, past which it answers
    RESOURCE_EXHAUSTED, which the exporters retry) times the body limit."""
    limit = state.config.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="tokentrace-grpc"),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # grpcio shares a port with any other process by default: two servers would split
            # the exports between two stores without a word. One owner, or fail to start.
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=_WORKERS * 4,
    )
    server.add_generic_rpc_handlers(
        (
            _service("opentelemetry.proto.collector.trace.v1.TraceService", "traces", traces_response, state),
            _service("opentelemetry.proto.collector.logs.v1.LogsService", "logs", logs_response, state),
        )
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    server.start()
    return server
