"""kill -9 during sustained ingest: every acknowledged span is present exactly once after restart."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.builders.otlp import chat, new_trace_id, protobuf
from tests.builders.processes import ServerProcess


def _acked(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if len(line) == 48] if path.exists() else []


def _wait_for_acks(path: Path, more_than: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(_acked(path))
        if count > more_than:
            return count
        time.sleep(0.05)
    raise AssertionError(f"sender acked no more than {more_than} spans")


def test_every_acked_span_survives_kill_9_exactly_once(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    acked_file, stop_file = tmp_path / "acked.txt", tmp_path / "stop"
    sender = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.crash_sender", server.url, str(acked_file), str(stop_file)],
        cwd=Path(__file__).parents[2],
    )
    try:
        seen = 0
        for _cycle in range(3):
            seen = _wait_for_acks(acked_file, seen + 1000)
            server.kill9()  # mid-stream: the sender is posting continuously
            server.start()
        seen = _wait_for_acks(acked_file, seen + 500)
    finally:
        stop_file.touch()
        sender.wait(30)

    server.kill9()
    server.start()  # replay happens here
    acked = _acked(acked_file)
    server.wait_for_spans(len(acked), timeout=60)
    with server.client() as c:
        exported = c.get("/api/v1/spans/export", params={"format": "jsonl"}).content.splitlines()
    server.stop()

    stored = [orjson.loads(line) for line in exported]
    keys = [s["trace_id"] + s["span_id"] for s in stored]
    assert len(keys) == len(set(keys)), "a span was stored twice"
    missing = set(acked) - set(keys)
    assert not missing, f"{len(missing)} acked spans lost of {len(acked)}"
    assert len(acked) > 3000


def test_a_torn_spool_record_is_skipped_with_a_log_line_and_start_up_goes_on(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    trace_id = new_trace_id()
    spans = [chat(trace_id, input_tokens=5, output_tokens=1) for _ in range(3)]
    assert server.post_traces(protobuf(spans)).status_code == 200
    server.kill9()  # right after the ack: the writer waits 0.2 s for more, the batch is in the spool
    segment = sorted((tmp_path / "data" / "spool").glob("*.spool"))[-1]
    with segment.open("ab") as f:
        f.write(b"TTS1\xff\xff\x00\x00torn")  # a header promising more than was written

    server.start()
    try:
        server.wait_for_spans(3)
    finally:
        server.stop()
    assert "torn or corrupt record" in server.log()
