"""A full disk: writes the spool or the store cannot make are answered 503 with Retry-After,
never acknowledged; the server stays up, and after a restart every acked span is there once."""

from __future__ import annotations

import httpx
import orjson

from tests.builders.otlp import chat, new_trace_id, protobuf, span
from tests.builders.processes import ServerProcess


def _batch() -> list[dict]:
    spans = []
    for _ in range(250):
        trace_id = new_trace_id()
        root = span(trace_id, name="request", attributes={"tenant.id": "t1", "pad": "x" * 200})
        spans += [root, chat(trace_id, parent=root["span_id"], input_tokens=10, output_tokens=1)]
    return spans


def test_writes_that_fail_for_space_are_503_and_acked_spans_survive(tmp_path):
    data = tmp_path / "data"
    ServerProcess(data).start().stop()  # the store's file made and migrated with room to spare
    largest = max(p.stat().st_size for p in data.rglob("*") if p.is_file())
    server = ServerProcess(data, file_size_limit=largest + 1024 * 1024).start()

    acked: list[str] = []
    answers: list[int] = []
    for _ in range(120):
        spans = _batch()
        response = server.post_traces(protobuf(spans))
        answers.append(response.status_code)
        if response.status_code == 200:
            acked += [s["trace_id"] + s["span_id"] for s in spans]
        else:
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) >= 1
        if answers.count(503) >= 10:
            break
    assert 503 in answers, "the file-size limit was never reached"
    assert acked, "nothing was accepted before the disk filled"
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # still up
    server.kill9()
    assert "File too large" in server.log()  # the OS refused the writes (EFBIG past RLIMIT_FSIZE)

    server = ServerProcess(data).start()  # room again: the spool replays what was acked
    try:
        server.wait_for_spans(len(acked), timeout=60)
        with server.client() as c:
            exported = c.get("/api/v1/spans/export", params={"format": "jsonl"}).content.splitlines()
    finally:
        server.stop()
    keys = [(s := orjson.loads(line))["trace_id"] + s["span_id"] for line in exported]
    assert len(keys) == len(set(keys)), "a span was stored twice"
    assert not set(acked) - set(keys), "an acked span was lost"
