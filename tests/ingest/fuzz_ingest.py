"""Coverage-guided fuzzing (atheris, libFuzzer) of ingest's request path: OTLP protobuf and
JSON, traces and logs, through decode, normalize, price, redact and the spool record.

Anything a client sends must end as accepted spans, rejected spans with reasons, or a
DecodeError (a 400). Any other exception is a crash: atheris prints the input and exits 1.

    .venv/bin/python -m tests.ingest.fuzz_ingest -atheris_runs=200000 [CORPUS_DIR …]

With no corpus it starts from the recorded payloads of every instrumentation family
(tests/ingest/fixtures), as protobuf and as OTLP/JSON. test_fuzz.py runs it for a bounded
number of inputs in the suite.
"""

from __future__ import annotations

import base64
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris
import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

with atheris.instrument_imports(include=["tokentrace"]):
    from tokentrace.ingest.pipeline import Pipeline
    from tokentrace.ingest.prepare import JSON, PROTOBUF
    from tokentrace.ingest.raw import DecodeError
    from tokentrace.ingest.record import decode_record, encode_record
    from tokentrace.pricing import PriceBook
    from tokentrace.store.duckdb import DuckDBStore

FIXTURES = Path(__file__).parent / "fixtures"
_ID_KEYS = {"traceId", "spanId", "parentSpanId"}
_MODES = ("traces", "logs", "json traces", "json logs")


def _prepare(pipeline: Pipeline, mode: int, body: bytes):
    if mode == 0:
        return pipeline.preparer.protobuf("fuzz", body)
    if mode == 1:
        return pipeline.preparer.export("fuzz", body, PROTOBUF, "logs")
    if mode == 2:
        return pipeline.preparer.json("fuzz", body)
    return pipeline.preparer.export("fuzz", body, JSON, "logs")


def one_input(pipeline: Pipeline, data: bytes) -> None:
    """The first byte picks the signal and encoding; the rest is the request body."""
    if not data:
        return
    try:
        prepared = _prepare(pipeline, data[0] % len(_MODES), data[1:])
    except DecodeError:
        return
    if prepared.rejected != len(prepared.errors):
        raise AssertionError("rejected count and reasons disagree")
    if decode_record(encode_record(prepared.tables)).rows != prepared.tables.rows:
        raise AssertionError("the spool record lost rows")


def _hex_ids(node: Any) -> Any:
    """protobuf's JSON mapping writes ids in base64; OTLP/JSON writes them in hex."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_KEYS and isinstance(v, str) else _hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


def seed_corpus(directory: Path) -> None:
    """Each recorded payload as a protobuf input, and as the OTLP/JSON of the same request."""
    for i, path in enumerate(sorted(FIXTURES.rglob("*.pb"))):
        logs = "logs" in path.name
        body = path.read_bytes()
        (directory / f"seed-{i}").write_bytes(bytes([1 if logs else 0]) + body)
        request = ExportLogsServiceRequest() if logs else ExportTraceServiceRequest()
        request.ParseFromString(body)
        text = orjson.dumps(_hex_ids(json_format.MessageToDict(request, use_integers_for_enums=True)))
        (directory / f"seed-json-{i}").write_bytes(bytes([3 if logs else 2]) + text)


def main(argv: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="tokentrace-fuzz-"))
    store = DuckDBStore(work / "store.duckdb")
    pipeline = Pipeline(store, PriceBook(), work / "spool")
    args = list(argv)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = work / "corpus"
        corpus.mkdir()
        seed_corpus(corpus)
        args.append(str(corpus))
    try:
        atheris.Setup(args, lambda data: one_input(pipeline, data))
        atheris.Fuzz()
    finally:  # Fuzz() exits the process when done; this runs only when it raises
        pipeline.close()
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
