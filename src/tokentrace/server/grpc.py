"""OTLP/gRPC receiver: the TraceService on its own port, sharing the HTTP server's pipeline."""

from __future__ import annotations

from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from tokentrace.ingest.otlp_proto import spans_of
from tokentrace.ingest.pipeline import Overloaded
from tokentrace.server.auth import Unauthorized, project_for
from tokentrace.server.state import ServerState

_MAX_MESSAGE = 64 * 1024 * 1024


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def Export(self, request, context):
        metadata = dict(context.invocation_metadata())
        try:
            project = project_for(self.state, metadata.get("authorization"))
        except Unauthorized as exc:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        pipeline = self.state.pipeline
        try:
            pipeline.check_capacity()
        except Overloaded as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        prepared = pipeline.prepare(project, spans_of(request), [])
        if prepared.accepted:
            try:
                pipeline.submit(prepared).result(timeout=60)
            except OSError as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot store spans right now: {exc}")
        response = ExportTraceServiceResponse()
        if prepared.rejected:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(
                    rejected_spans=prepared.rejected, error_message=prepared.error_message()
                )
            )
        return response


def start_grpc(state: ServerState, host: str, port: int) -> grpc.Server:
    """Start the gRPC receiver; returns the running server (call .stop())."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="tokentrace-grpc"),
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(state), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    server.start()
    return server
