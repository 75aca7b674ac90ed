"""`serve --ingest-only`: one of several nodes takes data and answers the API, and leaves the
background jobs (alert evaluation, sampling, retention) to the node that runs without it."""

from __future__ import annotations

import time

from tests.builders.otlp import chat, new_trace_id, protobuf
from tests.builders.processes import ServerProcess

RULE = """[[rules]]
name = "any-traffic"
kind = "threshold"
metric = "requests"
above = 0
min_requests = 1
window = "10m"
"""


def _run(tmp_path, name: str, *extra: str) -> tuple[int, int]:
    rules = tmp_path / f"{name}.toml"
    rules.write_text(RULE)
    server = ServerProcess(
        tmp_path / name,
        *("--alerts", str(rules), "--alert-interval", "1s"),
        *("--retention", "2d", "--retention-interval", "1s"),
        *extra,
    ).start()
    try:
        old = chat(new_trace_id(), input_tokens=3, output_tokens=1)
        old["start"] -= 5 * 86_400 * 10**9
        old["end"] -= 5 * 86_400 * 10**9
        assert (
            server.post_traces(
                protobuf([old, chat(new_trace_id(), input_tokens=3, output_tokens=1)])
            ).status_code
            == 200
        )
        server.wait_for_spans(1)
        time.sleep(4)  # several rounds of both jobs, where they run
        spans = server.get("/api/v1/stats")["spans"]
        events = len(server.get("/api/v1/alerts/events")["events"])
    finally:
        server.stop()
    return spans, events


def test_an_ingest_only_node_runs_no_background_job(tmp_path):
    assert _run(tmp_path, "main") == (1, 1)  # retention deleted the old span; the rule fired
    assert _run(tmp_path, "ingest", "--ingest-only") == (2, 0)  # neither happened here
