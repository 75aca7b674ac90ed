"""`tokentrace serve --store chdb://…`: the same server over the ClickHouse engine (chDB,
in the server's process): OTLP in, the API, the UI pages, a sampling simulation, a restart
that keeps the data, and retention."""

from __future__ import annotations

import time

from tests.builders.otlp import chat, new_trace_id, protobuf, span


def test_the_server_runs_over_clickhouse(start_server, tmp_path):
    store = f"chdb://{tmp_path / 'ch'}?database=tokentrace"
    server = start_server("--store", store)
    spans, trace_ids = [], []
    for tenant, tokens in (("acme", 1000), ("globex", 300)):
        trace_id = new_trace_id()
        trace_ids.append(trace_id)
        root = span(trace_id, name="request", attributes={"tenant.id": tenant, "user.id": f"u-{tenant}"})
        spans += [root, chat(trace_id, parent=root["span_id"], input_tokens=tokens, output_tokens=10)]
    assert server.post_traces(protobuf(spans)).status_code == 200
    server.post_traces(protobuf(spans))  # sent again: stored once
    server.wait_for_spans(4)

    rows = {
        r["tenant_id"]: r for r in server.get("/api/v1/rollups", group_by="tenant_id", since="1h")["rows"]
    }
    assert rows["acme"]["input_tokens"] == 1000 and rows["globex"]["input_tokens"] == 300  # inherited tenants
    listed = [t["trace_id"] for t in server.get("/api/v1/traces", since="1h")["traces"]]
    assert sorted(listed) == sorted(trace_ids)
    tree = server.get(f"/api/v1/traces/{trace_ids[0]}")
    assert tree["roots"][0]["children"][0]["input_tokens"] == 1000 and tree["totals"]["input_tokens"] == 1000
    with server.client() as http:
        for page in ("/", "/traces", "/cost", "/latency", f"/traces/{trace_ids[0]}"):
            assert http.get(page).status_code == 200, page
        simulated = http.post(
            "/api/v1/sampling/simulate",
            json={"since": "1d", "policy": {"base_rate": 0, "keep_slower_than_percentile": False}},
        )
        assert simulated.status_code == 200, simulated.text
        assert simulated.json()["traces"] == {"total": 2, "kept": 0, "share": 0.0}

    server.stop()
    again = start_server(
        "--store", store, "--retention", "2d", "--retention-interval", "1s", data_dir=server.data_dir
    )
    assert again.get("/api/v1/stats")["spans"] == 4
    # Retention on ClickHouse: a 5-day-old span goes on the next round; the others stay.
    old = chat(new_trace_id(), input_tokens=5, output_tokens=1)
    old["start"] -= 5 * 86_400 * 10**9
    old["end"] -= 5 * 86_400 * 10**9
    assert again.post_traces(protobuf([old])).status_code == 200
    deadline = time.monotonic() + 30
    while "'spans': 1" not in again.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "retention: deleted what is older than" in again.log() and "'spans': 1" in again.log()
    assert again.get("/api/v1/stats")["spans"] == 4
