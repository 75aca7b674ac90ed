"""Coverage-guided fuzzing (atheris, libFuzzer) of ingest's request path: OTLP protobuf and
JSON, traces and logs, through decode, normalize, price, redact and the spool record.

Anything a client sends must end as accepted spans, rejected spans with reasons, or a
DecodeError (a 400). Any other exception is a crash: atheris prints the input and exits 1.

    .venv/bin/python -m tests.ingest.fuzz_ingest -atheris_runs=200000 [CORPUS_DIR …]

With no corpus it starts from the recorded payloads of every instrumentation family
(tests/ingest/fixtures). test_fuzz.py runs it for a bounded number of inputs in the suite.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["tokentrace"]):
    from tokentrace.ingest.pipeline import Pipeline, decode_record, encode_record
    from tokentrace.ingest.raw import DecodeError
    from tokentrace.pricing import PriceBook
    from tokentrace.store.duckdb import DuckDBStore

FIXTURES = Path(__file__).parent / "fixtures"
_MODES = ("traces", "logs", "json traces", "json logs")


def _prepare(pipeline: Pipeline, mode: int, body: bytes):
    if mode == 0:
        return pipeline.prepare_protobuf("fuzz", body)
    if mode == 1:
        return pipeline.prepare_logs_protobuf("fuzz", body)
    if mode == 2:
        return pipeline.prepare_json("fuzz", body)
    return pipeline.prepare_logs_json("fuzz", body)


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


def seed_corpus(directory: Path) -> None:
    """Each recorded payload as a protobuf input, and as JSON where it is JSON."""
    for i, path in enumerate(sorted(FIXTURES.rglob("*.pb"))):
        mode = 1 if "logs" in path.name else 0
        (directory / f"seed-{i}").write_bytes(bytes([mode]) + path.read_bytes())
    for i, path in enumerate(sorted(FIXTURES.rglob("*.json"))):
        (directory / f"seed-json-{i}").write_bytes(bytes([2]) + path.read_bytes())


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
