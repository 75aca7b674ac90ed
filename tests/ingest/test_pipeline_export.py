"""`Pipeline.export`, the one call the OTLP routes (HTTP and gRPC) make: refused whole when the
store is behind, refused whole when the body cannot be read, and otherwise the valid spans
stored and the invalid ones rejected alone with their reason."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys

import orjson
import pytest

from tests.builders.otlp import chat, json_body, new_trace_id, protobuf, span
from tokentrace.ingest.pipeline import Overloaded, Pipeline
from tokentrace.ingest.prepare import JSON, PROTOBUF
from tokentrace.ingest.raw import DecodeError
from tokentrace.pricing import PriceBook
from tokentrace.pricing.overrides import parse_overrides
from tokentrace.store import SpanFilter
from tokentrace.store.duckdb import DuckDBStore


@pytest.fixture(params=[0, 2], ids=["in-process", "workers"])
def pipeline(tmp_path, request):
    """A pipeline preparing exports in this process, or in two worker processes: the same answers."""
    store = DuckDBStore(tmp_path / "store.duckdb")
    pipe = Pipeline(store, PriceBook(), tmp_path / "spool", batch_delay_s=0.05, workers=request.param)
    yield pipe
    pipe.close()
    store.close()


def _stored(pipeline: Pipeline, project: str) -> list[str]:
    assert pipeline.writer.flush()
    spans = pipeline.store.spans(SpanFilter(project), ("trace_id", "span_id"))
    return sorted(spans.column("span_id").to_pylist())


@pytest.mark.parametrize("media", [PROTOBUF, JSON])
def test_valid_spans_are_stored_and_an_invalid_one_is_rejected_alone(pipeline, media):
    trace = new_trace_id()
    good = chat(trace, input_tokens=10, output_tokens=2)
    bad = span(trace, span_id="0" * 16)  # OTLP: an all-zero span id is invalid
    body = protobuf([good, bad]) if media == PROTOBUF else orjson.dumps(json_body([good, bad]))
    prepared = pipeline.export("p1", body, media).result(timeout=10)
    assert _stored(pipeline, "p1") == [good["span_id"]]
    assert prepared.rejected == 1
    assert "all zeros" in prepared.error_message()


def test_logs_go_the_same_way(pipeline):
    prepared = pipeline.export("p1", orjson.dumps({"resourceLogs": []}), JSON, "logs").result(timeout=10)
    assert (prepared.accepted, prepared.rejected) == (0, 0)


def test_an_unreadable_body_is_refused_whole_and_nothing_is_stored(pipeline):
    with pytest.raises(DecodeError):  # on the Future, as a worker process would report it
        pipeline.export("p1", b"\xff\xfe not protobuf", PROTOBUF).result(timeout=10)
    with pytest.raises(DecodeError):
        pipeline.export("p1", b"{not json", JSON).result(timeout=10)
    assert _stored(pipeline, "p1") == []


def test_an_encoding_or_signal_it_does_not_know_is_a_clear_error(pipeline):
    with pytest.raises(ValueError, match="text/plain"):
        pipeline.export("p1", b"", "text/plain")
    with pytest.raises(ValueError, match="metrics"):
        pipeline.export("p1", b"", JSON, "metrics")


def test_a_store_that_is_behind_refuses_before_decoding(pipeline):
    pipeline.max_pending_rows = 0  # as if the backlog were full
    body = protobuf([chat(new_trace_id(), input_tokens=1, output_tokens=1)])
    with pytest.raises(Overloaded):
        pipeline.export("p1", body, PROTOBUF)
    with pytest.raises(Overloaded):  # before the body is read: garbage is not a DecodeError here
        pipeline.export("p1", b"garbage", PROTOBUF)
    pipeline.max_pending_rows = 1_000_000
    assert _stored(pipeline, "p1") == []


def test_workers_price_with_the_overrides_the_server_has_now(tmp_path):
    store = DuckDBStore(tmp_path / "store.duckdb")
    prices = PriceBook()
    pipe = Pipeline(store, prices, tmp_path / "spool", batch_delay_s=0.05, workers=1)
    try:
        body = protobuf([chat(new_trace_id(), model="house-model", input_tokens=1000, output_tokens=0)])
        assert not pipe.export("p1", body, PROTOBUF).result(timeout=30).tables.spans["cost_known"][0].as_py()
        text = '[[models]]\nmodel = "house-model"\ninput_mtok = 2.0\noutput_mtok = 4.0\n'
        prices.reload(parse_overrides(text, "prices.toml"))
        prepared = pipe.export("p1", body, PROTOBUF).result(timeout=30)
        assert prepared.tables.spans["cost_usd"][0].as_py() == pytest.approx(0.002)
    finally:
        pipe.close()
        store.close()


def test_a_dead_worker_is_replaced_and_the_export_it_held_is_refused_for_a_retry(tmp_path):
    store = DuckDBStore(tmp_path / "store.duckdb")
    pipe = Pipeline(store, PriceBook(), tmp_path / "spool", batch_delay_s=0.05, workers=1)
    try:
        first = chat(new_trace_id(), input_tokens=1, output_tokens=1)
        pipe.export("p1", protobuf([first]), PROTOBUF).result(timeout=30)
        for pid in list(pipe.workers._pool._processes):  # the pool's own record of its processes
            os.kill(pid, signal.SIGKILL)
        second = chat(new_trace_id(), input_tokens=1, output_tokens=1)
        outcomes = []
        for _ in range(3):  # the first may meet the broken pool: Overloaded, and the client retries
            try:
                outcomes.append(pipe.export("p1", protobuf([second]), PROTOBUF).result(timeout=30))
                break
            except Overloaded:
                outcomes.append("retry")
        assert outcomes[-1] != "retry" and outcomes[-1].accepted == 1
        assert _stored(pipe, "p1") == sorted([first["span_id"], second["span_id"]])
    finally:
        pipe.close()
        store.close()


def _pandas_loaded() -> bool:
    return "pandas" in sys.modules


def test_workers_prepare_exports_without_loading_pandas(tmp_path):
    """pyarrow would import pandas (installed here) at a worker's first table: ~1-3 s of CPU each."""
    store = DuckDBStore(tmp_path / "store.duckdb")
    pipe = Pipeline(store, PriceBook(), tmp_path / "spool", batch_delay_s=0.05, workers=1)
    try:
        body = protobuf([chat(new_trace_id(), input_tokens=10, output_tokens=5)])
        assert pipe.export("p1", body, PROTOBUF).result(timeout=30).accepted == 1
        assert pipe.workers._pool.submit(_pandas_loaded).result(timeout=30) is False
    finally:
        pipe.close()
        store.close()


def test_a_process_kept_from_pandas_builds_arrow_and_still_loads_pandas_when_asked():
    code = """
import sys
from tokentrace.ingest.arrow_alone import keep_pyarrow_from_pandas
keep_pyarrow_from_pandas()
import pyarrow as pa, pyarrow.compute as pc
table = pa.table({"a": pc.add(pa.array([1, 2]), 1)})
assert "pandas" not in sys.modules, "pyarrow loaded pandas"
assert table.to_pandas()["a"].tolist() == [2, 3]  # pandas is still there for code that asks
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_refused_export_leaves_no_cycle_to_collect(pipeline):
    """A request whose body cannot be read is freed, its body with it, once it is answered: no
    reference cycle through the error's traceback keeps it until the cycle collector runs (the
    server never walks what it set up again, and a burst of bad exports must not pile up)."""

    async def route():  # as the OTLP routes await an export
        try:
            await asyncio.wrap_future(pipeline.export("p1", b"\xff\xfe not protobuf" * 10_000, PROTOBUF))
        except DecodeError:
            return
        raise AssertionError("the body was read")

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(route())  # the workers started, the loop set up
        gc.collect()
        gc.disable()
        for _ in range(5):
            loop.run_until_complete(route())
        assert gc.collect() == 0
    finally:
        gc.enable()
        loop.close()
