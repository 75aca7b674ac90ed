"""OTLP/gRPC receiver: the TraceService and LogsService on their own port, sharing the HTTP
server's pipeline."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

import grpc
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tokentrace.ingest.otlp_proto import log_records_of, spans_of
from tokentrace.ingest.pipeline import Overloaded, Pipeline, Prepared
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


def _export(state: ServerState, context, prepare: Callable[[Pipeline, str], Prepared]) -> Prepared:
    metadata = dict(context.invocation_metadata())
    try:
        project = project_for(state, metadata.get("authorization"))
    except Unauthorized as exc:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    pipeline = state.pipeline
    try:
        pipeline.check_capacity()
    except Overloaded as exc:
        _unavailable(state, context, str(exc), exc.retry_after_s)
    prepared = prepare(pipeline, project)
    if prepared.accepted:
        try:
            pipeline.submit(prepared).result(timeout=60)
        except OSError as exc:
            _unavailable(state, context, f"cannot store data right now: {exc}", 5)
    return prepared


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def Export(self, request, context):
        prepared = _export(
            self.state, context, lambda pipeline, project: pipeline.prepare(project, spans_of(request), [])
        )
        return traces_response(prepared)


class LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def Export(self, request, context):
        prepared = _export(
            self.state,
            context,
            lambda pipeline, project: pipeline.prepare_logs(project, log_records_of(request), []),
        )
        return logs_response(prepared)


def start_grpc(state: ServerState, host: str, port: int) -> grpc.Server:
    """Start the gRPC receiver; returns the running server (call .stop()). Its memory for
    requests is bounded by the RPCs it holds at once (16, past which it answers
    RESOURCE_EXHAUSTED, which the exporters retry) times the body limit."""
    limit = state.config.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="tokentrace-grpc"),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
        maximum_concurrent_rpcs=_WORKERS * 4,
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(state), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogsService(state), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    server.start()
    return server
