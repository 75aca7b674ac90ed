"""The ingest worker pool: an export larger than a default pipe crosses to a worker and back whole,
through pipes sized for it; a worker's cycle collector runs seldom and skips what it imported."""

from __future__ import annotations

import fcntl
import gc
import json

import pytest

from tests.builders.otlp import chat, new_trace_id, protobuf
from tokentrace.cycle_collector import THRESHOLD
from tokentrace.ingest.prepare import PROTOBUF
from tokentrace.ingest.record import decode_record
from tokentrace.ingest.workers import PIPE_BYTES, Workers
from tokentrace.pricing import PriceBook


@pytest.fixture
def workers():
    pool = Workers(1, redact_content=True)
    yield pool
    pool.close()


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are Linux's")
def test_a_large_export_crosses_whole_through_widened_pipes(workers):
    prompt = json.dumps([{"role": "user", "content": "tell me about pipes " * 100}])
    calls = [chat(new_trace_id(), input_tokens=n + 1, output_tokens=3) for n in range(500)]
    for call in calls:  # ~2 KB a span: the export is ~1 MB, past 64 KB pipes
        call["attributes"]["gen_ai.input.messages"] = prompt
    body = protobuf(calls)
    assert len(body) > 10 * 65536
    record, rejected, errors = workers.submit(
        "default", body, PROTOBUF, "traces", PriceBook().overrides
    ).result(timeout=60)
    assert (rejected, errors) == (0, [])
    tables = decode_record(record)
    assert tables.spans.num_rows == 500
    assert sorted(tables.spans.column("input_tokens").to_pylist()) == list(range(1, 501))
    assert tables.content.num_rows == 500

    pool = workers._pool  # the pipes the executor made, at their new size
    for reader in (pool._call_queue._reader, pool._result_queue._reader):
        assert fcntl.fcntl(reader.fileno(), fcntl.F_GETPIPE_SZ) == PIPE_BYTES


def test_a_worker_collects_cycles_seldom_and_never_walks_what_it_imported(workers):
    body = protobuf([chat(new_trace_id(), input_tokens=5, output_tokens=3)])
    record, rejected, _ = workers.submit("default", body, PROTOBUF, "traces", PriceBook().overrides).result(
        timeout=60
    )
    assert rejected == 0 and decode_record(record).spans.num_rows == 1
    pool = workers._pool  # the worker that prepared it, asked directly
    assert pool.submit(gc.get_threshold).result(timeout=60)[0] == THRESHOLD
    assert pool.submit(gc.get_freeze_count).result(timeout=60) > 10_000  # the modules it imported
