"""Ingest worker processes (`serve --ingest-workers`), as a running server has them: exports over
HTTP and gRPC prepared off the server process, a clean and quiet stop that writes what is pending, and no
worker left behind when the server is killed."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.builders.otlp import chat, new_trace_id, protobuf
from tests.builders.processes import ServerProcess

pytestmark = pytest.mark.e2e


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (the fork server and the workers it started)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _until(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_workers_prepare_http_and_grpc_exports_and_end_with_a_killed_server(tmp_path):
    server = ServerProcess(tmp_path / "data", "--ingest-workers", "2").start()
    try:
        http_call = chat(new_trace_id(), input_tokens=120, output_tokens=7)
        assert server.post_traces(protobuf([http_call])).status_code == 200
        grpc_call = chat(new_trace_id(), input_tokens=80, output_tokens=3)
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(protobuf([grpc_call]))
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)
        server.wait_for_spans(2)
        rows = server.get("/api/v1/rollups", since="1h")["rows"]
        assert rows[0]["input_tokens"] == 200 and rows[0]["cost_usd"] > 0
        workers = _descendants(server.proc.pid)
        assert len(workers) >= 2  # the fork server and at least one worker
        server.kill9()
        assert _until(lambda: not _alive(workers)), f"left behind: {_alive(workers)}"
    finally:
        server.stop()


def test_a_stopped_server_writes_what_is_pending_and_stops_its_workers(tmp_path):
    server = ServerProcess(tmp_path / "data", "--ingest-workers", "2").start()
    call = chat(new_trace_id(), input_tokens=5, output_tokens=1)
    assert server.post_traces(protobuf([call])).status_code == 200
    workers = _descendants(server.proc.pid)
    server.stop()
    assert server.proc.returncode == 0
    # quietly: no "nanobind: leaked ..." from DuckDB's bindings for what the collector froze
    assert "leaked" not in server.log() and "Traceback" not in server.log(), server.log()
    assert _until(lambda: not _alive(workers)), f"left behind: {_alive(workers)}"
    server.start()  # nothing left in the spool to replay: the stop wrote it
    try:
        assert server.get("/api/v1/stats")["spans"] == 1
        assert "replayed" not in server.log().split("tokentrace listening")[-2]
    finally:
        server.stop()
