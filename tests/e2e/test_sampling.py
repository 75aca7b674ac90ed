"""Tail sampling through a running server: a policy from the --sampling file or the API, the
CLI's simulation, a sweep; traces past the recent window keep detail only for a reason, and the
cost totals do not move."""

from __future__ import annotations

import json
import time

from tests.builders.cli import cli
from tests.builders.otlp import chat, new_trace_id, protobuf, span

POLICY = """
recent = "1h"
base_rate = 0.0
keep_slower_than_percentile = false
"""


def _traces(hours_ago: float, count: int, errors: int) -> tuple[list[dict], list[str]]:
    spans, ids = [], []
    start = time.time_ns() - int(hours_ago * 3600e9)
    for n in range(count):
        trace_id = new_trace_id()
        ids.append(trace_id)
        root = span(trace_id, name="request", start_ns=start + n * 10**9, attributes={"tenant.id": "acme"})
        llm = chat(trace_id, parent=root["span_id"], input_tokens=1000, output_tokens=100)
        llm["start"], llm["end"] = root["start"] + 10**6, root["start"] + 5 * 10**6
        if n < errors:
            llm["status_code"] = 2
            llm["attributes"]["error.type"] = "timeout"
        spans += [root, llm]
    return spans, ids


def _cost(server) -> float:
    rows = server.get("/api/v1/rollups", since="1d")["rows"]
    return sum(r["cost_usd"] for r in rows)


def test_policy_simulation_and_sweep(start_server, tmp_path):
    path = tmp_path / "sampling.toml"
    path.write_text(POLICY)
    server = start_server("--sampling", str(path), "--sampling-interval", "1h")
    old, old_ids = _traces(hours_ago=3, count=10, errors=2)
    recent, recent_ids = _traces(hours_ago=0.1, count=2, errors=0)
    assert server.post_traces(protobuf(old + recent)).status_code == 200
    server.wait_for_spans(len(old) + len(recent))

    with server.client() as http:
        assert http.get("/api/v1/sampling/policy").json()["source"] == "file"
        bad = http.put("/api/v1/sampling/policy", json={"base_rate": 3})
        assert bad.status_code == 400 and "between 0 and 1" in bad.json()["error"]
        assert http.get("/api/v1/sampling/policy").json()["source"] == "file"  # unchanged

    simulated = json.loads(cli("sampling", "simulate", "--since", "1d", "--json", server=server).stdout)
    assert simulated["traces"] == {"total": 12, "kept": 2, "share": 2 / 12}
    assert simulated["kept_because"] == {"error": 2}
    assert simulated["error_traces"]["share"] == 1.0
    table = cli("sampling", "simulate", "--since", "1d", server=server).stdout
    assert "traces with errors" in table and "Kept because: 2 error" in table
    assert len(server.get("/api/v1/traces", since="1d")["traces"]) == 12  # simulating changed nothing

    cost = _cost(server)
    deadline = time.monotonic() + 30  # the writer rolls minutes up every 10 s; none judged before
    while True:
        swept = json.loads(cli("sampling", "apply", server=server).stdout)
        if swept["judged"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert swept == {"judged": 10, "kept": 2, "dropped": 8, "expired": 0, "error": 2}
    listed = {t["trace_id"] for t in server.get("/api/v1/traces", since="1d")["traces"]}
    assert listed == set(old_ids[:2]) | set(recent_ids)
    assert abs(_cost(server) - cost) < 1e-9  # the dropped traces' cost is still counted

    # A policy set through the API replaces the file's for the project.
    with server.client() as http:
        put = http.put("/api/v1/sampling/policy", json={"recent": "30m", "keep_tenants": ["acme"]})
        assert put.status_code == 200 and put.json()["source"] == "api"
        assert put.json()["policy"]["keep_tenants"] == ["acme"]
        assert http.delete("/api/v1/sampling/policy").json()["source"] == "file"
