"""OTLP/HTTP ingest through a running server: duplicates, unpriced models, encodings, projects."""

from __future__ import annotations

import base64
import gzip
import subprocess
import sys

import orjson
import pytest

from tests.builders.otlp import chat, json_body, new_trace_id, protobuf, span


def test_a_batch_delivered_twice_is_stored_once(server):
    trace_id = new_trace_id()
    root = span(trace_id, name="request")
    body = protobuf([root, chat(trace_id, parent=root["span_id"], input_tokens=100, output_tokens=10)])
    assert server.post_traces(body).status_code == 200
    assert server.post_traces(body).status_code == 200  # an exporter retry
    stats = server.wait_for_spans(2)
    assert stats["spans"] == 2 and stats["traces"] == 1 and stats["total_tokens"] == 110
    rollup = server.get("/api/v1/rollups")["rows"][0]
    assert rollup["requests"] == 1 and rollup["input_tokens"] == 100


def test_application_retries_are_each_counted(server):
    trace_id = new_trace_id()
    attempts = [
        chat(trace_id, input_tokens=100, output_tokens=0, **{}) | {"status_code": 2} for _ in range(2)
    ] + [chat(trace_id, input_tokens=100, output_tokens=10)]
    server.post_traces(protobuf(attempts))
    server.wait_for_spans(3)
    assert server.get("/api/v1/rollups")["rows"][0]["input_tokens"] == 300


def test_unpriced_model_is_counted_and_listed_never_zero(server):
    trace_id = new_trace_id()
    body = protobuf(
        [chat(trace_id, model="acme-internal-llm", provider="vllm", input_tokens=500, output_tokens=50)]
    )
    server.post_traces(body)
    stats = server.wait_for_spans(1)
    assert stats["unpriced_spans"] == 1
    [llm] = server.get(f"/api/v1/traces/{trace_id}")["roots"]
    assert llm["cost_usd"] is None and llm["cost_known"] is False
    assert "tokentrace.price.model" not in llm["attributes"]
    [row] = server.get("/api/v1/rollups", group_by="model")["rows"]
    assert row["request_model"] == "acme-internal-llm" and row["unpriced_spans"] == 1


def test_json_gzip_and_the_langfuse_path_with_basic_auth(server):
    created = subprocess.run(
        [sys.executable, "-m", "tokentrace.cli", "projects", "create", "lf", "--server", server.url],
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    trace_id = new_trace_id()
    body = gzip.compress(orjson.dumps(json_body([chat(trace_id, input_tokens=7, output_tokens=3)])))
    basic = base64.b64encode(f"pk-lf-123:{key}".encode()).decode()
    with server.client() as c:
        response = c.post(
            "/api/public/otel/v1/traces",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Authorization": f"Basic {basic}",
            },
        )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    assert server.wait_for_spans(1, key=key)["total_tokens"] == 10
    assert server.get("/api/v1/stats")["spans"] == 0  # not in the default project


def test_a_project_key_reaches_its_own_project_only(server):
    def create(name: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "tokentrace.cli", "projects", "create", name, "--server", server.url],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    key_a, key_b = create("alpha"), create("beta")
    assert key_a != key_b and key_a.startswith("tt_")
    trace_id = new_trace_id()
    assert (
        server.post_traces(protobuf([chat(trace_id, input_tokens=1, output_tokens=1)]), key_a).status_code
        == 200
    )
    server.wait_for_spans(1, key=key_a)

    assert server.get("/api/v1/stats", key_b)["spans"] == 0
    assert server.get("/api/v1/traces", key_b)["traces"] == []
    with server.client(key_b) as c:
        assert c.get(f"/api/v1/traces/{trace_id}").status_code == 404
        assert c.get("/api/v1/spans/export").content == b""
    assert server.get("/api/v1/stats")["spans"] == 0  # default project untouched

    wrong = server.post_traces(protobuf([chat(new_trace_id(), input_tokens=1, output_tokens=1)]), "tt_nope")
    assert wrong.status_code == 401
    with server.client("tt_nope") as c:
        assert c.get("/api/v1/stats").status_code == 401
    assert server.get("/api/v1/stats", key_a)["spans"] == 1  # the 401 wrote nothing

    duplicate = subprocess.run(
        [sys.executable, "-m", "tokentrace.cli", "projects", "create", "alpha", "--server", server.url],
        capture_output=True,
        text=True,
    )
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr


def test_a_non_loopback_or_keyed_server_refuses_anonymous_writes(start_server):
    srv = start_server("--require-key")
    response = srv.post_traces(protobuf([chat(new_trace_id(), input_tokens=1, output_tokens=1)]))
    assert response.status_code == 401
    with srv.client() as c:
        assert c.get("/api/v1/stats").status_code == 401
        refused = c.post("/api/v1/projects", json={"name": "x"})
    # no admin token either: the answer says how to get one, and so did the server when it started
    assert refused.status_code == 403 and "restart it with --admin-token" in refused.json()["error"]
    assert "no --admin-token: projects cannot be created" in srv.log()


@pytest.mark.parametrize("since,expected", [("15m", 1), ("3h", 2)])
def test_time_ranges_take_durations_and_instants(server, since, expected):
    import time

    old = span(new_trace_id(), name="old", start_ns=time.time_ns() - 2 * 3600 * 10**9)
    new = span(new_trace_id(), name="new")
    server.post_traces(protobuf([old, new]))
    server.wait_for_spans(2)
    assert len(server.get("/api/v1/traces", since=since)["traces"]) == expected
    from datetime import UTC, datetime, timedelta

    instant = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert [t["root_name"] for t in server.get("/api/v1/traces", since=instant)["traces"]] == ["new"]
    with server.client() as c:
        bad = c.get("/api/v1/traces", params={"since": "yesterday-ish"})
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["error"]
